# Key material never leaves the key file: every command's stdout and stderr
# (successes and error paths: wrong, damaged and loose-permission keys) and
# every file celmark writes (stamped stills and videos, the ledger with its
# WAL, exports, reports, JSON Lines, JUnit) are searched for the watermark
# secret and the Ed25519 private key, as hex (either case) and as raw bytes.
# The ledger holds the public key only. The CLI is non-dumpable while a key
# is loaded (no core dump carries the key), checked through /proc.
. "$(dirname "$0")/common.shlib"
: "${CELMARK_GEN:?}" "${CELMARK_MKCLIP:?}"

K="$T/k.key"
"$CELMARK" keygen "$K" >"$T/log.keygen" 2>&1 || exit 1
secret=$(sed -n 's/^secret //p' "$K")
seed=$(sed -n 's/^ed25519 //p' "$K")
check "key file has a 64-hex secret" sh -c "echo '$secret' | grep -Eqx '[0-9a-f]{64}'"
check "key file has a 64-hex ed25519 key" sh -c "echo '$seed' | grep -Eqx '[0-9a-f]{64}'"
"$CELMARK" keygen "$T/other.key" >/dev/null || exit 1
"$CELMARK_GEN" "$T/in.png" 320 240 7 || exit 1
"$CELMARK_MKCLIP" "$T/in.mp4" size=320x240 frames=6 seed=11 opts=crf=18 || exit 1
W="$T/w"   # everything celmark writes goes here
mkdir -p "$W"
L="$W/l.db"
n=0

# run EXPECTED_EXIT celmark-args...: stdout and stderr kept in $T/log.N
run() {
    want=$1
    shift
    n=$((n + 1))
    "$CELMARK" "$@" >"$T/log.$n" 2>&1
    code=$?
    CHECKS=$((CHECKS + 1))
    if [ "$code" -ne "$want" ]; then
        echo "FAIL: celmark $*: exit $code, expected $want"
        sed 's/^/  out: /' "$T/log.$n" | head -5
        FAILS=$((FAILS + 1))
    fi
}

run 0 key info "$K"
run 0 key info --json "$K"
run 0 stamp -k "$K" --id 0123456789abcdef "$T/in.png" "$W/a.png"
run 0 stamp -k "$K" --id 0123456789abcdef --quiet "$T/in.mp4" "$W/a.mp4"
run 0 verify -k "$K" "$W/a.png"
run 0 verify -k "$K" --json "$W/a.png" "$W/a.mp4"
run 0 stamp -k "$K" -l "$L" --recipient "Vendor A" --asset ep1 "$T/in.png" "$W/b.png"
id=$(sed -n 's/^issue_id: //p' "$T/log.$n")
run 0 verify -k "$K" -l "$L" --json --report "$W/r.html" "$W/b.png"
run 0 ledger list -l "$L"
run 0 ledger list -l "$L" --json
run 0 ledger show -l "$L" "$id"
run 0 ledger show -l "$L" --json "$id"
"$CELMARK" ledger export -l "$L" --format csv >"$W/export.csv" 2>>"$T/log.export"
"$CELMARK" ledger export -l "$L" --format jsonl >"$W/export.jsonl" 2>>"$T/log.export"
run 0 ledger verify -l "$L" -k "$K"
run 0 ledger verify -l "$L" -k "$K" --json
run 0 info "$W/a.png" "$W/a.mp4"
run 0 info --json "$W/b.png"
mkdir -p "$T/dump"
cp "$W/a.png" "$W/b.png" "$T/in.png" "$T/dump/"
run 0 scan -k "$K" -l "$L" -j 2 --jsonl "$W/s.jsonl" --report "$W/s.html" "$T/dump"
run 0 check -k "$K" -l "$L" --expect-recipient "Vendor A" --junit "$W/j.xml" "$W/b.png"
run 0 check -k "$K" --expect-issue 0123456789abcdef --json "$W/a.png"

# error paths: a wrong key, damaged keys, a key readable by others
run 1 verify -k "$T/other.key" "$W/a.png"
run 1 ledger verify -l "$L" -k "$T/other.key"
run 1 check -k "$T/other.key" --expect-issue 0123456789abcdef "$W/a.png"
cp "$K" "$T/loose.key"
chmod 644 "$T/loose.key"
run 3 verify -k "$T/loose.key" "$W/a.png"
run 3 key info "$T/loose.key"
# the secret line intact, the ed25519 line damaged (a message quoting the
# file's lines would show the secret)
printf 'celmark-key 1\nsecret %s\ned25519 %sZ\n' "$secret" "$(echo "$seed" | cut -c2-)" >"$T/bad1.key"
# the secret upper-cased, then one character short, then with a CR
printf 'celmark-key 1\nsecret %s\ned25519 %s\n' "$(echo "$secret" | tr a-f A-F)" "$seed" >"$T/bad2.key"
printf 'celmark-key 1\nsecret %s\ned25519 %s\n' "$(echo "$secret" | cut -c2-)" "$seed" >"$T/bad3.key"
printf 'celmark-key 1\nsecret %s\r\ned25519 %s\n' "$secret" "$seed" >"$T/bad4.key"
printf 'celmark-key 1\nsecret %s\ned25519 %s\nextra %s\n' "$secret" "$seed" "$secret" >"$T/bad5.key"
for b in 1 2 3 4 5; do
    chmod 600 "$T/bad$b.key"
    run 3 key info "$T/bad$b.key"
    run 3 stamp -k "$T/bad$b.key" --id 0123456789abcdef "$T/in.png" "$W/x$b.png"
    run 3 stamp -k "$T/bad$b.key" -l "$W/bad.db" --recipient x --asset y "$T/in.png" "$W/y$b.png"
    run 3 scan -k "$T/bad$b.key" --jsonl "$W/bad$b.jsonl" "$T/dump"
done
run 3 stamp -k "$K" --id 0123456789abcdef "$T/in.png" "$W/a.png"
run 2 stamp -k "$K" --id xyz "$T/in.png" "$W/z.png"

# upper-case hex and raw bytes of a 64-hex-digit string
upper() { echo "$1" | tr a-f A-F; }
hexdump_of() { od -An -tx1 -v "$1" | tr -d ' \n'; }

leaks=0
for f in "$T"/log.* "$W"/* "$W"/.??* ; do
    [ -f "$f" ] || continue
    for name in secret seed; do
        eval "v=\$$name"
        if grep -qiF "$v" "$f"; then
            echo "LEAK: $f contains the $name in hex"
            leaks=$((leaks + 1))
        fi
        if hexdump_of "$f" | grep -qF "$v"; then
            echo "LEAK: $f contains the $name as raw bytes"
            leaks=$((leaks + 1))
        fi
    done
done
files=$(count_names "$W")
check "no key material in $n logs and $files written files" [ "$leaks" -eq 0 ]
check "the ledger, WAL included, was searched" [ "$(count_names "$W" 'l.db*')" -ge 1 ]

# the ledger carries the public key (to verify rows), never the private one
expect 0 '' -- "$CELMARK" key info "$K"
pub=$(sed -n 's/^ed25519_public: //p' "$T/out")
check "key info prints the public key" sh -c "echo '$pub' | grep -Eqx '[0-9a-f]{64}'"
check "the ledger holds the public key" sh -c "od -An -tx1 -v '$L' | tr -d ' \n' | grep -qF '$pub'"

# the search itself works: files with the secret, in hex and as raw bytes
printf '%s' "$secret" >"$T/probe.hex"
check "probe: hex found" grep -qiF "$secret" "$T/probe.hex"
if command -v perl >/dev/null; then
    perl -e 'print pack("H*", $ARGV[0])' "$secret" >"$T/probe.raw"
    check "probe: raw bytes found" sh -c "od -An -tx1 -v '$T/probe.raw' | tr -d ' \n' | grep -qF '$secret'"
fi

# no core dump while a key is loaded (prctl PR_SET_DUMPABLE 0): a command
# blocked opening a FIFO is killed with SIGSEGV; without a key (info) it
# leaves a core file, with a key (verify) none. Only where cores land in the
# working folder (core_pattern "core...") and setuid dumps are off.
C="$T/cores"
mkdir -p "$C"
mkfifo "$C/fifo.png" 2>/dev/null
if grep -q '^core' /proc/sys/kernel/core_pattern 2>/dev/null &&
    [ "$(cat /proc/sys/fs/suid_dumpable 2>/dev/null)" = 0 ] && [ -p "$C/fifo.png" ] &&
    [ "${CELMARK_ASAN:-0}" = 0 ]; then
    # core_dump_of ARGS...: 1 if celmark ARGS, killed by SIGSEGV, dumped
    core_dump_of() {
        rm -f "$C"/core*
        (cd "$C" && sh -c 'ulimit -c unlimited; exec "$@"' sh "$CELMARK" "$@") >/dev/null 2>&1 &
        pid=$!
        # until it blocks opening the FIFO (the key, if any, is loaded by
        # then), at most 10 s; where /proc does not say, half a second
        n=0
        wchan=$(cat "/proc/$pid/wchan" 2>/dev/null)
        while [ $n -lt 100 ] && [ -n "$wchan" ] && [ "$wchan" != 0 ] &&
            [ "$wchan" != wait_for_partner ]; do
            sleep 0.1
            n=$((n + 1))
            wchan=$(cat "/proc/$pid/wchan" 2>/dev/null)
        done
        [ "$wchan" = wait_for_partner ] || sleep 0.5
        kill -SEGV "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
        [ "$(count_names "$C" 'core*')" -ge 1 ]
    }
    if core_dump_of info "$C/fifo.png"; then
        if core_dump_of verify -k "$K" "$C/fifo.png"; then
            echo "FAIL: a core dump was written while the key was loaded"
            FAILS=$((FAILS + 1))
        fi
        CHECKS=$((CHECKS + 1))
        rm -f "$C"/core*
    else
        echo "note: no core dump even without a key here; dumpability not checked"
    fi
fi

finish
