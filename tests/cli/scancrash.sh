# scan when a decoder crashes on a file (simulated: CELMARK_FAULT_CRASH makes
# the worker about to read a matching file raise SIGSEGV). The crash must
# name the files being read in OUT.crashed; --resume must then finish the
# scan, reporting the poisoned file as unreadable (not read again) and
# every other file exactly once, and leave no OUT.crashed behind.
. "$(dirname "$0")/common.shlib"
: "${CELMARK_GEN:?}"

"$CELMARK" keygen "$T/k.key" >/dev/null || exit 1
D="$T/dump"
mkdir -p "$D"
i=1
while [ $i -le 8 ]; do
    "$CELMARK_GEN" "$D/s$i.png" 96 64 "$i" || exit 1
    i=$((i + 1))
done
cp "$D/s3.png" "$D/poison.png"
media=9
J="$T/scan.jsonl"
export CELMARK_FAULT_CRASH=poison

"$CELMARK" scan -k "$T/k.key" -j 2 --jsonl "$J" "$D" >"$T/out" 2>"$T/err"
code=$?
# (killed by SIGSEGV, or exit 1 from a sanitizer's report; never a
# scan's own 0 or 3)
check "the crash ends the scan (exit $code)" sh -c "[ $code -ne 0 ] && [ $code -ne 3 ]"
check "OUT.crashed names the poisoned file" grep -q '/poison\.png$' "$J.crashed"
check "OUT.crashed holds at most one file per worker" [ "$(wc -l <"$J.crashed")" -le 2 ]

# resume until the scan completes: at most twice (several suspects are
# first read one at a time; a second crash then names one)
n=0
while [ $n -lt 3 ]; do
    "$CELMARK" scan -k "$T/k.key" -j 2 --resume --jsonl "$J" "$D" >"$T/out" 2>"$T/err"
    code=$?
    [ "$code" -eq 3 ] && break
    n=$((n + 1))
done
check "resume completes, with the poisoned file unreadable (exit $code after $n crashes)" \
    [ "$code" -eq 3 ]
check "stderr says why it was not read" grep -q 'poison\.png: an earlier scan crashed' "$T/err"
check "every media file reported once" [ "$(grep -c '"path"' "$J")" -eq "$media" ]
check "OUT holds only those lines" [ "$(wc -l <"$J")" -eq "$media" ]
check "each path once" [ "$(grep -o '"path":"[^"]*"' "$J" | sort -u | wc -l)" -eq "$media" ]
check "the poisoned file's line is an error" \
    grep -q '"path":"[^"]*poison\.png".*"error":"[^"]*crashed while reading this file' "$J"
check "summary lists it" grep -q '^unreadable_file: .*poison\.png' "$T/out"
check "no OUT.crashed left" [ ! -e "$J.crashed" ]

# a scan that does not crash leaves no OUT.crashed either
unset CELMARK_FAULT_CRASH
expect 0 '' -- "$CELMARK" scan -k "$T/k.key" --force --jsonl "$T/clean.jsonl" "$D/s1.png"
check "clean run: no OUT.crashed" [ ! -e "$T/clean.jsonl.crashed" ]
finish
