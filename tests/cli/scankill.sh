# scan --resume under SIGKILL: a small dump is scanned into one OUT again and
# again, each run killed with SIGKILL at a random moment of its typical
# runtime (measured first, like ledger.sh), then once to completion. OUT
# must then list every media file exactly once (3 new files arrive before
# each run, so every run is killed with work left), hold only complete JSON
# objects (a line torn by a kill never survives) and no temp file may
# remain. CELMARK_KILL_RUNS sets the number of kills (default 100).
. "$(dirname "$0")/common.shlib"
: "${CELMARK_GEN:?}"

"$CELMARK" keygen "$T/k.key" >/dev/null || exit 1
K="$T/k.key"
D="$T/dump"
mkdir -p "$D/a/b" "$D/c"
"$CELMARK_GEN" "$T/big.png" 320 240 7 || exit 1
i=1
while [ $i -le 20 ]; do
    "$CELMARK_GEN" "$D/a/s$i.png" 64 48 "$i" || exit 1
    i=$((i + 1))
done
i=1
while [ $i -le 4 ]; do
    "$CELMARK" stamp -k "$K" --id "000000000000000$i" "$T/big.png" "$D/c/m$i.png" >/dev/null ||
        exit 1
    i=$((i + 1))
done
cp "$D/a/s1.png" "$D/a/b/renamed.dat"     # media by content
head -c 500 "$D/c/m1.png" >"$D/c/cut.png"  # corrupt: reported with an error
for n in 1 2 3 4; do printf 'notes %s\n' "$n" >"$D/a/b/n$n.txt"; done # not media
media=26 # 20 stills + 4 marked + renamed.dat + cut.png

O="$T/res"
mkdir -p "$O"
J="$O/scan.jsonl"
# a first whole run, then a typical resumed run (3 new files) timed (ms),
# to spread the kills over it
"$CELMARK" scan -k "$K" -j 2 --jsonl "$J" "$D" >/dev/null 2>&1
check "a whole run reports $media files" [ "$(wc -l <"$J")" -eq "$media" ]
for n in 1 2 3; do cp "$D/a/s$n.png" "$D/a/b/new0-$n.png"; done
media=$((media + 3))
t0=$(date +%s%N)
"$CELMARK" scan -k "$K" -j 2 --resume --jsonl "$J" "$D" >/dev/null 2>&1
t1=$(date +%s%N)
dur=$(((t1 - t0) / 1000000))
[ "$dur" -lt 10 ] && dur=10
check "a resumed run adds 3 lines" [ "$(wc -l <"$J")" -eq "$media" ]

runs=${CELMARK_KILL_RUNS:-100}
killed=0
i=1
while [ $i -le "$runs" ]; do
    # new files arrive before each run (as on a live server), so every run
    # has work left when it is killed, not only the first few
    for n in 1 2 3; do cp "$D/a/s$n.png" "$D/a/b/new$i-$n.png"; done
    media=$((media + 3))
    delay=$(awk -v s="$$$i" -v d="$dur" 'BEGIN { srand(s); printf "%.4f", rand() * d * 1.1 / 1000 }')
    "$CELMARK" scan -k "$K" -j 2 --resume --jsonl "$J" "$D" >/dev/null 2>&1 &
    pid=$!
    sleep "$delay"
    kill -9 "$pid" 2>/dev/null && killed=$((killed + 1))
    wait "$pid" 2>/dev/null
    i=$((i + 1))
done
lines_before=$(wc -l <"$J" 2>/dev/null || echo 0)
# 3 if this run met the corrupt file itself, 0 if an earlier one did
"$CELMARK" scan -k "$K" -j 2 --resume --jsonl "$J" "$D" >"$T/last.out" 2>&1
code=$?
check "the final run completes (exit $code)" [ "$code" -eq 0 -o "$code" -eq 3 ]
check "the final run skips what was reported" grep -q "^skipped_already_reported: $lines_before\$" "$T/last.out"
paths() { grep -o '"path":"[^"]*"' "$J" | sort; }
check "every media file reported ($(paths | sort -u | wc -l) of $media)" \
    [ "$(paths | sort -u | wc -l)" -eq "$media" ]
dups=$(paths | uniq -d)
[ -n "$dups" ] && echo "duplicates: $dups"
check "no file reported twice" [ -z "$dups" ]
check "one line per file" [ "$(wc -l <"$J")" -eq "$media" ]
check "OUT ends with a newline" [ "$(tail -c 1 "$J" | od -An -c | tr -d ' ')" = '\n' ]
check "every line a whole object" sh -c "! grep -qv '^{\"schema\":\"celmark.scan/1\".*}\$' '$J'"
if command -v python3 >/dev/null; then
    check "every line parses as a JSON object" python3 -c '
import json, sys
for n, line in enumerate(open(sys.argv[1]), 1):
    if not isinstance(json.loads(line), dict):
        sys.exit("line %d is not an object" % n)' "$J"
fi
check "the corrupt file has an error" sh -c "grep -F '/c/cut.png\"' '$J' | grep -q '\"error\":\"'"
check "marked files found" [ "$(grep -c '"marked":true' "$J")" -eq 4 ]
check "no temp file" no_temp_files "$O" "$D"
echo "scan kill -9: $runs runs ($killed killed, ${dur} ms a run), $lines_before lines before the last run"

finish
