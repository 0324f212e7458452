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

# valgrind with celmark's options; SUPP carries the source path, which may
# hold spaces, so it is passed as one word
SUPP="--suppressions=$CELMARK_SRC/tests/valgrind.supp"
valgrind_celmark() {
    valgrind --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite \
        --track-origins=no -q "$SUPP" "$CELMARK" "$@"
}

# Can valgrind run celmark here at all? valgrind 3.19 cannot decode some
# instructions that third-party libraries pick on newer CPUs (libhwy, under
# libjxl under libavcodec, on AVX-512 machines dies with SIGILL before main).
# Then there is nothing to test: skip, saying where it died. A SIGILL inside
# celmark itself, or any other failure of the probe, is a failure.
# ours LOCATION: is the "(in OBJECT)" or "(FILE:LINE)" of a valgrind frame
# in celmark (the command, libcelmark, or a file of its source tree)?
ours() {
    case "$1" in
    *"(in "*) printf '%s\n' "$1" | grep -q '(in [^)]*celmark[^)/]*)$' ;;
    *"("*":"*")") [ -n "$(find "$CELMARK_SRC" -name "$(printf '%s\n' "$1" | sed -E 's/.*\(([^:]*):[0-9]+\)$/\1/')" -print -quit)" ] ;;
    *) true ;; # no location: assume the worst
    esac
}
valgrind_celmark --version >"$T/out" 2>"$T/err"
code=$?
if [ "$code" -ne 0 ]; then
    # the innermost frame of the crash: "at 0x...: FUNC (in OBJECT)"
    at=$(grep -m1 -E '^==[0-9]+== +at 0x' "$T/err" | sed -E 's/^==[0-9]+== +at 0x[0-9A-Fa-f]+: //')
    if grep -q 'signal 4 (SIGILL)' "$T/err" && [ -n "$at" ] && ! ours "$at"; then
        echo "SKIP: $(valgrind --version) cannot run celmark on this CPU: illegal instruction in $at"
        rm -rf "$T"
        exit 77
    fi
    echo "FAIL: valgrind celmark --version: exit $code"
    sed 's/^/  stderr: /' "$T/err" | head -40
    rm -rf "$T"
    exit 1
fi

# vg EXIT -- celmark args...: run under valgrind; expect the usual exit
# code and no valgrind report on stderr (its lines start with ==PID==).
vg() {
    want=$1
    shift 2
    CHECKS=$((CHECKS + 1))
    valgrind_celmark "$@" >"$T/out" 2>"$T/err"
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
