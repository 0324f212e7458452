# stamp -l / verify -l / ledger list|show|export|verify / key info, concurrency
# (8 stamps on one ledger) and crash safety (kill -9 of stamp at random moments).
. "$(dirname "$0")/common.shlib"

"$CELMARK_GEN" "$T/in.png" 640 360 5 || exit 1
"$CELMARK_GEN" "$T/small.png" 256 256 7 || exit 1
"$CELMARK_GEN" "$T/tiny.png" 64 64 7 || exit 1
expect 0 '' -- "$CELMARK" keygen "$T/k.key"
fp=$(sed -n 's/^fingerprint: //p' "$T/out")
expect 0 '' -- "$CELMARK" keygen "$T/other.key"
L="$T/l.db"

# key info
expect 0 '' -- "$CELMARK" key info "$T/k.key"
check "key info: same fingerprint as keygen" grep -qx "fingerprint: $fp" "$T/out"
check "key info: no secret printed" sh -c "! grep -q \"\$(sed -n 's/^secret //p' '$T/k.key')\" '$T/out'"
printf 'celmark-key 1\nsecret zz\n' >"$T/bad.key"
chmod 600 "$T/bad.key"
expect 3 "bad.key" -- "$CELMARK" key info "$T/bad.key"
check "damaged key: one line" one_line_err
expect 3 "nokey" -- "$CELMARK" key info "$T/nokey"
expect 2 "unknown subcommand" -- "$CELMARK" key show "$T/k.key"

# stamp -l: usage errors
expect 2 "no recipient" -- "$CELMARK" stamp -k "$T/k.key" -l "$L" --asset ep01 "$T/in.png" "$T/a.png"
expect 2 "no asset" -- "$CELMARK" stamp -k "$T/k.key" -l "$L" --recipient va "$T/in.png" "$T/a.png"
expect 2 "cannot be used with --ledger" -- "$CELMARK" stamp -k "$T/k.key" -l "$L" --id 0123456789abcdef --recipient va --asset ep01 "$T/in.png" "$T/a.png"
expect 2 "need a ledger" -- "$CELMARK" stamp -k "$T/k.key" --id 0123456789abcdef --recipient va "$T/in.png" "$T/a.png"
check "no ledger created by usage errors" [ ! -e "$L" ]

# stamp -l: records the copy
expect 0 '' -- "$CELMARK" stamp -k "$T/k.key" -l "$L" --recipient "Vendor A" --asset ep01 --note "first cut" --operator alice "$T/in.png" "$T/a.png"
ida=$(sed -n 's/^issue_id: //p' "$T/out")
check "stamp -l prints the id" sh -c "echo '$ida' | grep -Eqx '[0-9a-f]{16}'"
check "stamp -l prints the row" grep -qx 'ledger_row: 1' "$T/out"
expect 0 '' -- "$CELMARK" stamp -k "$T/k.key" -l "$L" --recipient "Vendor B" --asset ep02 --profile robust --strength 1.5 "$T/in.png" "$T/b.png"
idb=$(sed -n 's/^issue_id: //p' "$T/out")
check "fresh ids differ" [ "$ida" != "$idb" ]
expect 3 "already exists; use --force" -- "$CELMARK" stamp -k "$T/k.key" -l "$L" --recipient x --asset ep01 "$T/in.png" "$T/a.png"
printf 'garbage' >"$T/bad.png"
expect 3 "bad.png" -- "$CELMARK" stamp -k "$T/k.key" -l "$L" --recipient x --asset ep01 "$T/bad.png" "$T/c.png"
expect 3 "c.jpg: cannot write jpg files" -- "$CELMARK" stamp -k "$T/k.key" -l "$L" --recipient x --asset ep01 "$T/in.png" "$T/c.jpg"
expect 3 "missing/c.png" -- "$CELMARK" stamp -k "$T/k.key" -l "$L" --recipient x --asset ep01 "$T/in.png" "$T/missing/c.png"
check "failed stamps leave no output" sh -c "[ ! -e '$T/c.png' ] && [ ! -e '$T/c.jpg' ]"
check "failed stamps leave no temp files" no_temp_files "$T"
printf 'not a database, just some text that is long enough to have a header....\n' >"$T/junk.db"
expect 3 "junk.db: not a celmark ledger" -- "$CELMARK" stamp -k "$T/k.key" -l "$T/junk.db" --recipient x --asset ep01 "$T/in.png" "$T/c.png"
check "no output with a bad ledger" [ ! -e "$T/c.png" ]

# ledger list / show / export
expect 0 '' -- "$CELMARK" ledger list -l "$L"
check "list: two rows" [ "$(grep -c "$ida\|$idb" "$T/out")" -eq 2 ]
expect 0 '' -- "$CELMARK" ledger list -l "$L" --recipient "Vendor B" --json
check "list --recipient --json" sh -c "[ \$(wc -l <'$T/out') -eq 1 ] && grep -q '\"issue_id\":\"$idb\"' '$T/out'"
expect 0 '' -- "$CELMARK" ledger list -l "$L" --asset ep01
check "list --asset" sh -c "grep -q '$ida' '$T/out' && ! grep -q '$idb' '$T/out'"
expect 0 '' -- "$CELMARK" ledger show -l "$L" "$ida"
check "show: recipient" grep -qx 'recipient: Vendor A' "$T/out"
check "show: note" grep -qx 'note: first cut' "$T/out"
check "show: operator" grep -qx 'operator: alice' "$T/out"
check "show: signature" grep -qx 'signature: ok' "$T/out"
check "show: key fingerprint" grep -qx "key_fingerprint: $fp" "$T/out"
check "show: output hash" grep -qx "output_sha256: $(sha256sum "$T/a.png" | cut -d' ' -f1)" "$T/out"
check "show: input hash" grep -qx "input_sha256: $(sha256sum "$T/in.png" | cut -d' ' -f1)" "$T/out"
check "show: size" grep -qx 'size: 640x360' "$T/out"
expect 0 '' -- "$CELMARK" ledger show -l "$L" "$idb"
check "show: params" sh -c "grep -qx 'profile: robust' '$T/out' && grep -qx 'strength: 1.5' '$T/out'"
expect 1 "not in the ledger" -- "$CELMARK" ledger show -l "$L" 0000000000000001
expect 0 '' -- "$CELMARK" ledger export -l "$L" --format csv
check "csv: header + 2 rows" [ "$(wc -l <"$T/out")" -eq 3 ]
check "csv: quoted text" grep -q '"Vendor A","ep01","first cut"' "$T/out"
expect 0 '' -- "$CELMARK" ledger export -l "$L" --format jsonl
check "jsonl: 2 rows" [ "$(wc -l <"$T/out")" -eq 2 ]
expect 2 "--format csv or" -- "$CELMARK" ledger export -l "$L" --format xml
expect 2 "no ledger given" -- "$CELMARK" ledger list
expect 2 "unknown subcommand" -- "$CELMARK" ledger frob -l "$L"
expect 3 "nosuch.db" -- "$CELMARK" ledger list -l "$T/nosuch.db"
check "no ledger created by reading" [ ! -e "$T/nosuch.db" ]

# verify -l: names the vendor
expect 0 '' -- "$CELMARK" verify -k "$T/k.key" -l "$L" "$T/a.png"
check "verify -l: id" grep -qx "issue_id: $ida" "$T/out"
check "verify -l: recipient" grep -qx 'recipient: Vendor A' "$T/out"
check "verify -l: asset" grep -qx 'asset: ep01' "$T/out"
check "verify -l: stamped_at" grep -Eqx 'stamped_at: [0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z' "$T/out"
check "verify -l: row signature" grep -qx 'ledger_row: signature ok' "$T/out"
expect 0 '' -- "$CELMARK" verify -k "$T/k.key" -l "$L" --asset ep02 --json "$T/b.png"
check "verify -l --json" grep -q "\"issue_id\":\"$idb\".*\"recipient\":\"Vendor B\",\"asset\":\"ep02\",\"stamped_at\":\"[0-9T:Z-]*\",\"ledger_row\":\"signature ok\"" "$T/out"
expect 1 '' -- "$CELMARK" verify -k "$T/k.key" -l "$L" --json "$T/in.png"
check "verify -l unmarked: nulls" grep -q '"marked":false.*"recipient":null,"asset":null,"stamped_at":null,"ledger_row":null' "$T/out"
expect 0 '' -- "$CELMARK" stamp -k "$T/k.key" --id 0123456789abcdef "$T/in.png" "$T/noledger.png"
expect 0 '' -- "$CELMARK" verify -k "$T/k.key" -l "$L" "$T/noledger.png"
check "blind id not in ledger" grep -qx 'ledger_row: not in ledger' "$T/out"
expect 1 "rows were signed with key $fp, not the key given" -- "$CELMARK" verify -k "$T/other.key" -l "$L" "$T/a.png"
expect 3 "nosuch.db" -- "$CELMARK" verify -k "$T/k.key" -l "$T/nosuch.db" "$T/a.png"
expect 2 "needs a ledger" -- "$CELMARK" verify -k "$T/k.key" --asset ep01 "$T/a.png"

# ledger verify, and tampering with SQL
expect 0 '' -- "$CELMARK" ledger verify -l "$L" -k "$T/k.key"
check "ledger verify: ok" grep -qx 'status: ok' "$T/out"
expect 1 "signed with another key" -- "$CELMARK" ledger verify -l "$L" -k "$T/other.key"
expect 2 "needs the key" -- "$CELMARK" ledger verify -l "$L"
if command -v sqlite3 >/dev/null; then
    cp "$L" "$T/t.db"
    sqlite3 "$T/t.db" "UPDATE issues SET recipient='Mallory' WHERE seq=1"
    expect 1 '' -- "$CELMARK" ledger verify -l "$T/t.db" -k "$T/k.key"
    check "edit: first bad row named" sh -c "grep -qx 'status: TAMPERED' '$T/out' && grep -qx 'first_bad_row: 1' '$T/out'"
    cp "$L" "$T/t.db"
    sqlite3 "$T/t.db" "DELETE FROM issues WHERE seq=1"
    expect 1 '' -- "$CELMARK" ledger verify -l "$T/t.db" -k "$T/k.key" --json
    check "delete: first bad row named" grep -q '"ok":false.*"first_bad_row":2' "$T/out"
    # a hostile ledger's pending entry must not make us delete its files
    cp "$L" "$T/t.db"
    echo precious >"$T/victim.txt"
    sqlite3 "$T/t.db" "INSERT INTO pending(issue_id, output_path, temp_path, created_at) VALUES(42, '$T/victim.txt', '$T/victim.txt', 'x')"
    expect 0 '' -- "$CELMARK" ledger list -l "$T/t.db"
    check "pending entry naming a foreign file: file kept" [ -f "$T/victim.txt" ]
    # a NULL schema version (NOT NULL dropped) is refused, not a crash
    rm -f "$T/n.db"
    sqlite3 "$T/n.db" "CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT); INSERT INTO meta VALUES('schema_version', NULL)"
    expect 3 "n.db: bad ledger schema version" -- "$CELMARK" ledger list -l "$T/n.db"
    rm -f "$T/t.db" "$T/n.db"
fi

# eight stamps at once on one ledger: all land, distinct ids, chain intact
C="$T/conc.db"
i=1
while [ $i -le 8 ]; do
    ( "$CELMARK" stamp -k "$T/k.key" -l "$C" --recipient "v$i" --asset conc "$T/small.png" "$T/conc$i.png" >"$T/conc$i.out" 2>"$T/conc$i.err"; echo $? >"$T/conc$i.rc" ) &
    i=$((i + 1))
done
wait
i=1
while [ $i -le 8 ]; do
    check "concurrent stamp $i exit 0" grep -qx 0 "$T/conc$i.rc"
    i=$((i + 1))
done
expect 0 '' -- "$CELMARK" ledger list -l "$C"
check "8 rows" [ "$(tail -n +2 "$T/out" | wc -l)" -eq 8 ]
check "8 distinct ids" [ "$(tail -n +2 "$T/out" | cut -f2 | sort -u | wc -l)" -eq 8 ]
check "8 distinct ids from stamp" [ "$(cat "$T"/conc*.out | sed -n 's/^issue_id: //p' | sort -u | wc -l)" -eq 8 ]
expect 0 '' -- "$CELMARK" ledger verify -l "$C" -k "$T/k.key"

# kill -9 at random moments: no partial output, no orphan row, chain verifies
K="$T/kill.db"
D="$T/killout"
mkdir -p "$D"
# how long one stamp takes here (ms), to spread the kills over it
t0=$(date +%s%N)
"$CELMARK" stamp -k "$T/k.key" -l "$K" --recipient warm --asset kill "$T/tiny.png" "$D/warm.png" >/dev/null
t1=$(date +%s%N)
dur=$(( (t1 - t0) / 1000000 ))
[ "$dur" -lt 20 ] && dur=20
runs=${CELMARK_KILL_RUNS:-100}
i=1
while [ $i -le "$runs" ]; do
    delay=$(awk -v s="$$$i" -v d="$dur" 'BEGIN { srand(s); printf "%.4f", rand() * d * 1.2 / 1000 }')
    "$CELMARK" stamp -k "$T/k.key" -l "$K" --recipient "r$i" --asset kill "$T/tiny.png" "$D/o$i.png" >/dev/null 2>&1 &
    pid=$!
    sleep "$delay"
    kill -9 "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    i=$((i + 1))
done
# the next open reconciles what the killed stamps left behind
expect 0 '' -- "$CELMARK" ledger verify -l "$K" -k "$T/k.key"
check "kill: ledger verifies" grep -qx 'status: ok' "$T/out"
check "kill: nothing pending" sh -c "! grep -q '^pending:' '$T/out'"
check "kill: no temp files" no_temp_files "$D"
"$CELMARK" ledger export -l "$K" --format csv | tail -n +2 >"$T/rows.csv"
rows=$(wc -l <"$T/rows.csv")
files=$(count_names "$D" '[!.]*')
check "kill: one row per output ($rows rows, $files files)" [ "$rows" -eq "$files" ]
orphans=0
while IFS=, read -r seq id rcp asset note at op insha outsha path rest; do
    path=$(echo "$path" | tr -d '"')
    if [ ! -f "$path" ] || [ "$(sha256sum "$path" | cut -d' ' -f1)" != "$outsha" ]; then
        echo "orphan row $seq ($id): $path"
        orphans=$((orphans + 1))
    fi
done <"$T/rows.csv"
check "kill: every row's output exists with its hash" [ "$orphans" -eq 0 ]
for f in "$D"/*.png; do
    check "kill: $f has a row" grep -q "\"$(realpath "$f")\"" "$T/rows.csv"
done
echo "kill -9: $runs runs, $((rows - 1)) stamps completed, $((runs - rows + 1)) killed midway"

finish
