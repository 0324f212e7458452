# key delegate (issue 17): vendors' keys one layer down the subcontracting
# chain, down to layer 4; key info shows the chain; the delegation is a row
# of the delegating key's ledger (list, show --delegate, verify, tampering);
# a vendor's stamped copies verify against the studio's key alone; refusals
# (existing OUT, bad name, too deep, unusable ledger) leave nothing behind.
. "$(dirname "$0")/common.shlib"

"$CELMARK_GEN" "$T/in.png" 640 360 5 || exit 1
expect 0 '' -- "$CELMARK" keygen "$T/studio.key"
sfp=$(sed -n 's/^fingerprint: //p' "$T/out")
expect 0 '' -- "$CELMARK" keygen "$T/other.key"
S="$T/studio.db"

# rows LEDGER: how many rows 'ledger list' shows (0 without the file)
rows() {
    if [ -e "$1" ]; then
        "$CELMARK" ledger list -l "$1" | tail -n +2 | wc -l
    else
        echo 0
    fi
}

# secret_of KEYFILE: the watermark secret, for "never printed" checks
secret_of() {
    sed -n 's/^secret //p' "$1"
}

# key delegate: a vendor's key and its ledger row
expect 0 '' -- "$CELMARK" key delegate -k "$T/studio.key" -l "$S" --to vendor-a "$T/va.key"
check "delegate: key" grep -qx "key: $T/va.key" "$T/out"
check "delegate: name" grep -qx 'name: vendor-a' "$T/out"
check "delegate: layer 1" grep -qx 'layer: 1' "$T/out"
check "delegate: issued by the studio" grep -qx "issuer_fingerprint: $sfp" "$T/out"
check "delegate: rooted in the studio" grep -qx "root_fingerprint: $sfp" "$T/out"
check "delegate: ledger row 1" grep -qx 'ledger_row: 1' "$T/out"
vfp=$(sed -n 's/^fingerprint: //p' "$T/out")
check "delegate: a new fingerprint" sh -c "echo '$vfp' | grep -Eqx '([0-9a-f]{4}:){7}[0-9a-f]{4}' && [ '$vfp' != '$sfp' ]"
check "delegate: key file mode 0600" [ "$(stat -c %a "$T/va.key")" = 600 ]
check "delegate: no secret printed" sh -c "! grep -q '$(secret_of "$T/va.key")' '$T/out' && ! grep -q '$(secret_of "$T/studio.key")' '$T/out'"
check "delegate: no temp files" no_temp_files "$T"

# key info: layer, name, chain
expect 0 '' -- "$CELMARK" key info "$T/va.key"
check "info: fingerprint" grep -qx "fingerprint: $vfp" "$T/out"
check "info: layer" grep -qx 'layer: 1' "$T/out"
check "info: name" grep -qx 'name: vendor-a' "$T/out"
check "info: root" grep -qx "root_fingerprint: $sfp" "$T/out"
check "info: the studio's certificate" grep -Eqx "cert: layer=1 date=[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z issuer=$sfp subject=$vfp name=vendor-a" "$T/out"
check "info: no secret" sh -c "! grep -q '$(secret_of "$T/va.key")' '$T/out'"
expect 0 '' -- "$CELMARK" key info --json "$T/va.key"
check "info --json: layer, name" grep -q '"layer":1,"name":"vendor-a"' "$T/out"
check "info --json: chain" grep -q "\"chain\":\[{\"layer\":1,\"name\":\"vendor-a\",\"date\":\"[0-9TZ:-]*\",\"issuer_fingerprint\":\"$sfp\",\"subject_fingerprint\":\"$vfp\"}\]" "$T/out"
expect 0 '' -- "$CELMARK" key info "$T/studio.key"
check "info: a studio key is layer 0, without chain" sh -c "grep -qx 'layer: 0' '$T/out' && ! grep -q '^cert:' '$T/out' && ! grep -q '^name:' '$T/out'"

# a second level: the vendor delegates to a sub-vendor, in its own ledger
expect 0 '' -- "$CELMARK" key delegate -k "$T/va.key" -l "$T/va.db" --to sub-x "$T/sx.key"
check "level 2: layer" grep -qx 'layer: 2' "$T/out"
check "level 2: issued by vendor-a" grep -qx "issuer_fingerprint: $vfp" "$T/out"
check "level 2: rooted in the studio" grep -qx "root_fingerprint: $sfp" "$T/out"
check "level 2: row 1 of the vendor's ledger" grep -qx 'ledger_row: 1' "$T/out"
xfp=$(sed -n 's/^fingerprint: //p' "$T/out")
expect 0 '' -- "$CELMARK" key info "$T/sx.key"
check "level 2 info: two certificates" [ "$(grep -c '^cert: ' "$T/out")" -eq 2 ]
check "level 2 info: studio's first" sh -c "grep '^cert: ' '$T/out' | head -1 | grep -q 'layer=1 .* issuer=$sfp subject=$vfp name=vendor-a\$'"
check "level 2 info: then vendor-a's" sh -c "grep '^cert: ' '$T/out' | tail -1 | grep -q 'layer=2 .* issuer=$vfp subject=$xfp name=sub-x\$'"

# down to layer 4, and no further
expect 0 '' -- "$CELMARK" key delegate -k "$T/sx.key" -l "$T/sx.db" --to l3 "$T/l3.key"
expect 0 '' -- "$CELMARK" key delegate -k "$T/l3.key" -l "$T/l3.db" --to l4 "$T/l4.key"
check "layer 4 reached" grep -qx 'layer: 4' "$T/out"
expect 3 "l4.key: a layer 4 key cannot delegate" -- "$CELMARK" key delegate -k "$T/l4.key" -l "$T/l4.db" --to l5 "$T/l5.key"
check "too deep: one line" one_line_err
check "too deep: no key written" [ ! -e "$T/l5.key" ]
check "too deep: no ledger created" [ ! -e "$T/l4.db" ]

# --json
expect 0 '' -- "$CELMARK" key delegate --json -k "$T/studio.key" -l "$S" --to vendor-b "$T/vb.key"
check "delegate --json" grep -q "^{\"schema\":\"celmark.key-delegate/1\",\"key\":\".*\",\"name\":\"vendor-b\",\"layer\":1,\"fingerprint\":\"[0-9a-f:]*\",\"issuer_fingerprint\":\"$sfp\",\"root_fingerprint\":\"$sfp\",\"ledger\":\".*\",\"ledger_row\":2}\$" "$T/out"
# the paths as JSON writes them (fixed strings: \u escapes are no regex)
check "delegate --json: the key's path" grep -qF "\"key\":\"$(json_str "$T/vb.key")\",\"name\"" "$T/out"
check "delegate --json: the ledger's path" grep -qF "\"ledger\":\"$(json_str "$S")\",\"ledger_row\":2}" "$T/out"

# an existing OUT is refused before anything happens
printf 'precious\n' >"$T/taken.key"
expect 3 "taken.key: already exists; refusing to overwrite a key" -- "$CELMARK" key delegate -k "$T/studio.key" -l "$T/new.db" --to vendor-c "$T/taken.key"
check "existing OUT: one line" one_line_err
check "existing OUT: untouched" [ "$(cat "$T/taken.key")" = precious ]
check "existing OUT: no ledger created" [ ! -e "$T/new.db" ]
n=$(rows "$S")
expect 3 "taken.key: already exists" -- "$CELMARK" key delegate -k "$T/studio.key" -l "$S" --to vendor-c "$T/taken.key"
check "existing OUT: no row" [ "$(rows "$S")" -eq "$n" ]
ln -s "$T/nowhere" "$T/dangling.key"
expect 3 "dangling.key: already exists" -- "$CELMARK" key delegate -k "$T/studio.key" -l "$S" --to vendor-c "$T/dangling.key"
check "dangling symlink OUT: nothing created through it" [ ! -e "$T/nowhere" ]

# a bad name: a usage error that never echoes it, and nothing written
expect 2 "^celmark: --to: a delegate's name must be" -- "$CELMARK" key delegate -k "$T/studio.key" -l "$S" --to "$(printf 'bad\033[2Jname')" "$T/bad.key"
check "bad name: one message line and the hint" sh -c "[ \$(wc -l <'$T/err') -eq 2 ] && tail -1 '$T/err' | grep -qx \"Try 'celmark help key'.\""
check "bad name: not echoed (no escape sequence)" sh -c "! grep -q \"\$(printf '\033')\" '$T/err'"
check "bad name: no key bytes" sh -c "! grep -q '$(secret_of "$T/studio.key")' '$T/err'"
check "bad name: no key file" [ ! -e "$T/bad.key" ]
check "bad name: no row" [ "$(rows "$S")" -eq "$n" ]
expect 2 "a delegate's name must be" -- "$CELMARK" key delegate -k "$T/studio.key" -l "$S" --to "a/b" "$T/bad.key"
expect 2 "a delegate's name must be" -- "$CELMARK" key delegate -k "$T/studio.key" -l "$S" --to "" "$T/bad.key"
expect 2 "a delegate's name must be" -- "$CELMARK" key delegate -k "$T/studio.key" -l "$S" --to "$(printf 'x%.0s' $(seq 65))" "$T/bad.key"
expect 2 "needs the delegate's name" -- "$CELMARK" key delegate -k "$T/studio.key" -l "$S" "$T/bad.key"
expect 2 "needs its ledger" -- "$CELMARK" key delegate -k "$T/studio.key" --to vendor-c "$T/bad.key"
expect 2 "needs the delegating key" -- "$CELMARK" key delegate -l "$S" --to vendor-c "$T/bad.key"
expect 2 "needs the new key's file" -- "$CELMARK" key delegate -k "$T/studio.key" -l "$S" --to vendor-c
expect 3 "nokey" -- "$CELMARK" key delegate -k "$T/nokey" -l "$S" --to vendor-c "$T/bad.key"
check "usage errors: no key file" [ ! -e "$T/bad.key" ]
check "usage errors: no row" [ "$(rows "$S")" -eq "$n" ]

# the ledger cannot take the row: no key file is left behind
printf 'not a database, just some text that is long enough to have a header....\n' >"$T/junk.db"
expect 3 "junk.db: not a celmark ledger" -- "$CELMARK" key delegate -k "$T/studio.key" -l "$T/junk.db" --to vendor-d "$T/vd.key"
check "bad ledger: no key file" [ ! -e "$T/vd.key" ]
expect 3 "missing/x.db" -- "$CELMARK" key delegate -k "$T/studio.key" -l "$T/missing/x.db" --to vendor-d "$T/vd.key"
check "missing ledger folder: no key file" [ ! -e "$T/vd.key" ]
expect 3 "no folder" -- "$CELMARK" key delegate -k "$T/studio.key" -l "$S" --to vendor-d "$T/missing/vd.key"
check "refusals: no temp files" no_temp_files "$T"

# the studio's ledger: list, show, verify
expect 0 '' -- "$CELMARK" ledger list -l "$S"
check "list: vendor-a's delegation" grep -Eqx "1	delegation	[0-9TZ:-]+	vendor-a	layer 1 key $vfp" "$T/out"
check "list: vendor-b's delegation" grep -Eq "^2	delegation	.*	vendor-b	layer 1 key " "$T/out"
expect 0 '' -- "$CELMARK" ledger list -l "$S" --json
check "list --json: delegation schema" grep -q '^{"schema":"celmark.ledger-delegation/1","seq":1,"kind":"delegation","name":"vendor-a","layer":1,' "$T/out"
expect 0 '' -- "$CELMARK" ledger show -l "$S" --delegate vendor-a
check "show --delegate: name" grep -qx 'name: vendor-a' "$T/out"
check "show --delegate: layer" grep -qx 'layer: 1' "$T/out"
check "show --delegate: subject" grep -qx "subject_fingerprint: $vfp" "$T/out"
check "show --delegate: issuer" grep -qx "issuer_fingerprint: $sfp" "$T/out"
check "show --delegate: date" grep -Eqx 'date: [0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z' "$T/out"
check "show --delegate: signature" grep -qx 'signature: ok' "$T/out"
expect 1 "no delegation to this name" -- "$CELMARK" ledger show -l "$S" --delegate nobody
expect 2 "not both" -- "$CELMARK" ledger show -l "$S" --delegate vendor-a 0123456789abcdef
expect 2 "is for ledger show" -- "$CELMARK" ledger list -l "$S" --delegate vendor-a
expect 0 '' -- "$CELMARK" ledger export -l "$S" --format jsonl
check "export jsonl: both delegations" [ "$(grep -c '"kind":"delegation"' "$T/out")" -eq 2 ]
expect 0 '' -- "$CELMARK" ledger verify -l "$S" -k "$T/studio.key"
check "verify: ok" grep -qx 'status: ok' "$T/out"
check "verify: delegations counted" grep -qx 'delegations: 2' "$T/out"
expect 1 "signed with another key" -- "$CELMARK" ledger verify -l "$S" -k "$T/other.key"

# a vendor's stamped copy: its row carries the chain and verifies against
# the studio's key alone
expect_stamped 'v\.png' -- "$CELMARK" stamp -k "$T/va.key" -l "$T/va.db" --recipient sub-x --asset sh010 "$T/in.png" "$T/v.png"
vid=$(sed -n 's/^issue_id: //p' "$T/out")
check "vendor stamp: row 2 (after its delegation)" grep -qx 'ledger_row: 2' "$T/out"
expect 0 '' -- "$CELMARK" ledger show -l "$T/va.db" "$vid"
check "vendor row: signer" grep -qx "key_fingerprint: $vfp" "$T/out"
check "vendor row: layer and name" sh -c "grep -qx 'signer_layer: 1' '$T/out' && grep -qx 'signer_name: vendor-a' '$T/out'"
check "vendor row: root" grep -qx "root_fingerprint: $sfp" "$T/out"
check "vendor row: certificate" grep -q "^cert: layer=1 .* issuer=$sfp subject=$vfp name=vendor-a\$" "$T/out"
check "vendor row: chain and signature ok" sh -c "grep -qx 'chain: ok' '$T/out' && grep -qx 'signature: ok' '$T/out'"
expect 0 '' -- "$CELMARK" ledger verify -l "$T/va.db" -k "$T/studio.key"
check "vendor ledger verifies with the studio key" grep -qx 'status: ok' "$T/out"
check "vendor ledger: both rows through the chain" grep -qx 'delegated_rows: 2' "$T/out"
expect 0 '' -- "$CELMARK" ledger verify -l "$T/va.db" -k "$T/va.key"
check "vendor ledger verifies with the vendor's key" grep -qx 'status: ok' "$T/out"
expect 1 "signed with another key" -- "$CELMARK" ledger verify -l "$T/va.db" -k "$T/other.key"
# two layers down: the sub-vendor's ledger, from the studio's key
expect_stamped 'x\.png' -- "$CELMARK" stamp -k "$T/sx.key" -l "$T/sx.db" --recipient l3 --asset sh010 "$T/in.png" "$T/x.png"
expect 0 '' -- "$CELMARK" ledger verify -l "$T/sx.db" -k "$T/studio.key" --json
check "sub-vendor ledger verifies with the studio key" grep -q '"ok":true,"rows":2,"delegations":1,"delegated_rows":2' "$T/out"

# a key without a chain to the studio: the row is reported bad
cp "$T/va.db" "$T/forged.db"
expect 0 '' -- "$CELMARK" key delegate -k "$T/other.key" -l "$T/other.db" --to vendor-a "$T/fake.key"
expect_stamped 'f\.png' -- "$CELMARK" stamp -k "$T/fake.key" -l "$T/forged.db" --recipient x --asset sh010 "$T/in.png" "$T/f.png"
expect 1 "1 rows were signed with another key" -- "$CELMARK" ledger verify -l "$T/forged.db" -k "$T/studio.key"
check "fake vendor: TAMPERED at row 3" sh -c "grep -qx 'status: TAMPERED' '$T/out' && grep -qx 'first_bad_row: 3' '$T/out'"
check "fake vendor: the chain named" grep -Eqx "reason: signed by another key \\([0-9a-f:]{39}\\): its chain starts at another key \\([0-9a-f:]{39}\\)" "$T/out"
cp "$T/va.db" "$T/forged.db"
expect_stamped 'g\.png' -- "$CELMARK" stamp -k "$T/other.key" -l "$T/forged.db" --recipient x --asset sh010 "$T/in.png" "$T/g.png"
expect 1 "signed with another key" -- "$CELMARK" ledger verify -l "$T/forged.db" -k "$T/studio.key"
check "no chain: TAMPERED at row 3" grep -qx 'first_bad_row: 3' "$T/out"

# tampering with delegation rows and chains
if command -v sqlite3 >/dev/null; then
    cp "$S" "$T/t.db"
    sqlite3 "$T/t.db" "UPDATE delegations SET recorded_at='2000-01-01T00:00:00Z' WHERE seq=1"
    expect 1 '' -- "$CELMARK" ledger verify -l "$T/t.db" -k "$T/studio.key"
    check "edited delegation: row 1, a delegation" sh -c "grep -qx 'first_bad_row: 1' '$T/out' && grep -qx 'kind: delegation' '$T/out'"
    expect 0 '' -- "$CELMARK" ledger show -l "$T/t.db" --delegate vendor-a
    check "edited delegation: show says BAD" grep -qx 'signature: BAD' "$T/out"
    cp "$S" "$T/t.db"
    sqlite3 "$T/t.db" "DELETE FROM delegations WHERE seq=1"
    expect 1 '' -- "$CELMARK" ledger verify -l "$T/t.db" -k "$T/studio.key" --json
    check "deleted delegation: next row bad" grep -q '"ok":false.*"first_bad_row":2,"first_bad_kind":"delegation".*"reason":"row 1 is missing' "$T/out"
    cp "$T/va.db" "$T/t.db"
    sqlite3 "$T/t.db" "UPDATE issues SET chain=x''"
    expect 1 "1 rows were signed with another key" -- "$CELMARK" ledger verify -l "$T/t.db" -k "$T/studio.key"
    check "stripped chain: row 2" sh -c "grep -qx 'first_bad_row: 2' '$T/out' && grep -qx 'issue_id: $vid' '$T/out'"
    rm -f "$T/t.db"
fi

finish
