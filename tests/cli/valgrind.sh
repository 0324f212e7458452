# The CLI round trips under valgrind (memcheck): keygen, stamp, verify (text,
# --json), info, stamp -l / verify -l / ledger verify, a tiny video, scan,
# check. Each must exit with its usual code, and valgrind must report
# nothing: an invalid read or write, a use of uninitialised memory or a
# definite leak makes it exit 99 and print the error. Third-party noise
# that celmark cannot fix is in tests/valgrind.supp, each entry with why.
# Skipped (77) without valgrind and in the sanitizer build (ASan's shadow
# memory and valgrind do not mix). Small inputs: valgrind runs ~30x slower.
. "$(dirname "$0")/common.shlib"
: "${CELMARK_GEN:?}" "${CELMARK_MKCLIP:?}" "${CELMARK_SRC:?}"

if [ "${CELMARK_ASAN:-0}" != 0 ]; then
    echo "SKIP: sanitizer build (valgrind and ASan do not mix)"
    rm -rf "$T"
    exit 77
fi
if ! command -v valgrind >/dev/null; then
    echo "SKIP: valgrind not installed"
    rm -rf "$T"
    exit 77
fi

VG="valgrind --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite
    --track-origins=no -q --suppressions=$CELMARK_SRC/tests/valgrind.supp"

# vg EXIT -- celmark args...: run under valgrind; expect the usual exit
# code and no valgrind report on stderr (its lines start with ==PID==).
vg() {
    want=$1
    shift 2
    CHECKS=$((CHECKS + 1))
    # shellcheck disable=SC2086
    $VG "$CELMARK" "$@" >"$T/out" 2>"$T/err"
    code=$?
    if [ "$code" -ne "$want" ] || grep -q '^==[0-9]*==' "$T/err"; then
        echo "FAIL: valgrind celmark $*: exit $code (expected $want; 99 = valgrind error)"
        sed 's/^/  stderr: /' "$T/err" | head -60
        FAILS=$((FAILS + 1))
        return 1
    fi
    return 0
}

# a 320x240 frame and a 6-frame clip (seeds whose pictures carry a mark at
# this small size)
"$CELMARK_GEN" "$T/in.png" 320 240 7 || exit 1
"$CELMARK_MKCLIP" "$T/clip.mp4" size=320x240 frames=6 seed=11 opts=crf=18 || exit 1
K="$T/k.key"
L="$T/l.db"

vg 0 -- keygen "$K"
vg 0 -- key info "$K"
vg 0 -- stamp -k "$K" --id 0123456789abcdef "$T/in.png" "$T/a.png"
vg 0 -- verify -k "$K" "$T/a.png"
check "verify finds the mark" grep -qx 'marked: yes' "$T/out"
vg 0 -- verify -k "$K" --json "$T/a.png"
vg 1 -- verify -k "$K" "$T/in.png"
vg 0 -- info "$T/a.png"
vg 0 -- info --json "$T/a.png" "$T/clip.mp4"
vg 0 -- stamp -k "$K" -l "$L" --recipient "Vendor A" --asset ep1 "$T/in.png" "$T/b.png"
vg 0 -- verify -k "$K" -l "$L" "$T/b.png"
check "verify -l names the recipient" grep -qx 'recipient: Vendor A' "$T/out"
vg 0 -- ledger verify -l "$L" -k "$K"
vg 0 -- ledger list -l "$L"
vg 0 -- stamp -k "$K" --id 00000000000000aa --quiet "$T/clip.mp4" "$T/clip-a.mp4"
vg 0 -- verify -k "$K" -q "$T/clip-a.mp4"
# error paths free what they took too
vg 3 -- verify -k "$K" "$T/nosuch.png"
vg 3 -- stamp -k "$K" --id 0123456789abcdef "$T/in.png" "$T/a.png"
vg 2 -- stamp -k "$K" "$T/in.png"
printf 'celmark-key 1\nsecret zz\n' >"$T/bad.key"
chmod 600 "$T/bad.key"
vg 3 -- scan -k "$T/bad.key" "$T/in.png"
vg 3 -- check -k "$T/bad.key" --expect-unmarked "$T/in.png"
vg 3 -- ledger verify -l "$L" -k "$T/bad.key"

D="$T/dump"
mkdir -p "$D/sub"
cp "$T/a.png" "$T/in.png" "$D/"
cp "$T/b.png" "$D/sub/"
head -c 3000 "$T/a.png" >"$D/sub/cut.png"
echo text >"$D/notes.txt"
vg 3 -- scan -k "$K" -l "$L" -j 2 --jsonl "$T/s.jsonl" "$D"
check "scan: 4 lines" [ "$(wc -l <"$T/s.jsonl")" -eq 4 ]
rm "$D/sub/cut.png"
vg 0 -- check -k "$K" --expect-issue 0123456789abcdef "$T/a.png"
vg 1 -- check -k "$K" -l "$L" --expect-recipient "Vendor A" --json "$D"

finish
