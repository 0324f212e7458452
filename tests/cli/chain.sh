# The subcontracting chain, read back: the studio stamps for vendor-a, which
# stamps that copy for sub-x with the key the studio delegated; verify with
# the studio's key and both ledgers names both layers (text and JSON), with
# recipients; a vendor row with a forged chain says signature BAD; the
# vendor's key reads its own layer and not the studio's; an unrelated key
# reads nothing.
. "$(dirname "$0")/common.shlib"

"$CELMARK_GEN" "$T/in.png" 1280 720 9 || exit 1
"$CELMARK" keygen "$T/studio.key" >/dev/null || exit 1
"$CELMARK" keygen "$T/other.key" >/dev/null || exit 1
expect 0 '' -- "$CELMARK" key delegate -k "$T/studio.key" -l "$T/studio.db" --to vendor-a "$T/va.key"
stamp() { # key ledger recipient in out -> prints the issue id
    "$CELMARK" stamp -q -k "$1" -l "$2" --recipient "$3" --asset ep01 "$4" "$5" 2>/dev/null |
        sed -n 's/^issue_id: //p'
}
IDS=$(stamp "$T/studio.key" "$T/studio.db" vendor-a "$T/in.png" "$T/s.png")
IDV=$(stamp "$T/va.key" "$T/va.db" sub-x "$T/s.png" "$T/v.png")
check "stamped both layers" [ -n "$IDS" ] && [ -n "$IDV" ]

# the studio reads both layers
expect 0 '' -- "$CELMARK" verify -k "$T/studio.key" -l "$T/studio.db" -l "$T/va.db" "$T/v.png"
check "layer 0: the studio's copy for vendor-a" grep -q "^layer 0: (own) issue_id=$IDS .*recipient=\"vendor-a\".*ledger_row=signature ok" "$T/out"
check "layer 1: vendor-a's copy for sub-x" grep -q "^layer 1: vendor-a issue_id=$IDV .*recipient=\"sub-x\".*ledger_row=signature ok" "$T/out"
check "top level stays the studio's own claim" grep -qx "issue_id: $IDS" "$T/out"
expect 0 '' -- "$CELMARK" verify --json -k "$T/studio.key" -l "$T/studio.db" -l "$T/va.db" "$T/v.png"
check "JSON layers, outermost first" grep -q "\"layers\":\[{\"layer\":0,\"delegate\":null,\"issue_id\":\"$IDS\".*},{\"layer\":1,\"delegate\":\"vendor-a\",\"issue_id\":\"$IDV\".*\"recipient\":\"sub-x\"" "$T/out"

# without the vendor's ledger the layer is still read (no recipient known)
expect 0 '' -- "$CELMARK" verify -k "$T/studio.key" -l "$T/studio.db" "$T/v.png"
check "layer 1 read from the delegation alone" grep -q "^layer 1: vendor-a issue_id=$IDV" "$T/out"

# a vendor's row whose certificate chain was tampered with vouches for nothing
if command -v sqlite3 >/dev/null; then
    cp "$T/va.db" "$T/bad.db"
    sqlite3 "$T/bad.db" "UPDATE issues SET chain = substr(chain,1,40) || x'ff' || substr(chain,42);"
    expect 0 '' -- "$CELMARK" verify -k "$T/studio.key" -l "$T/studio.db" -l "$T/bad.db" "$T/v.png"
    check "layer 1 with a forged chain: signature BAD" grep -q "^layer 1: vendor-a issue_id=$IDV .*ledger_row=signature BAD" "$T/out"
    expect 1 'signed with another key' -- "$CELMARK" ledger verify -k "$T/studio.key" -l "$T/bad.db"
    check "ledger verify: tampered" grep -qx 'status: TAMPERED' "$T/out"
fi
expect 0 '' -- "$CELMARK" ledger verify -k "$T/studio.key" -l "$T/va.db"
check "the vendor's ledger verifies from the studio's key" grep -qx 'status: ok' "$T/out"

# check names a copy down the chain
expect 0 '' -- "$CELMARK" check -k "$T/studio.key" -l "$T/studio.db" -l "$T/va.db" --expect-recipient vendor-a/sub-x "$T/v.png"
expect 0 '' -- "$CELMARK" check -k "$T/studio.key" -l "$T/studio.db" -l "$T/va.db" --expect-recipient vendor-a "$T/v.png"
expect 1 '' -- "$CELMARK" check -k "$T/studio.key" -l "$T/studio.db" -l "$T/va.db" --expect-recipient vendor-a/sub-y "$T/v.png"
check "check names the chain found" grep -q 'found layer 0: vendor-a; layer 1: vendor-a/sub-x' "$T/out"
expect 1 '' -- "$CELMARK" check -k "$T/studio.key" -l "$T/studio.db" -l "$T/va.db" --expect-recipient vendor-b "$T/v.png"
expect 1 '' -- "$CELMARK" check -k "$T/studio.key" -l "$T/studio.db" --expect-recipient vendor-a/sub-x "$T/s.png"
check "a chain path needs the layer below found" grep -q 'found layer 0: vendor-a$' "$T/out"
# scan carries the layers
mkdir -p "$T/dump" && cp "$T/v.png" "$T/dump/"
expect 0 '' -- "$CELMARK" scan -q -k "$T/studio.key" -l "$T/studio.db" -l "$T/va.db" --jsonl "$T/scan.jsonl" "$T/dump"
expect 0 '' -- "$CELMARK" scan -q -k "$T/studio.key" -l "$T/studio.db" -l "$T/va.db" --jsonl "$T/scan2.jsonl" --report "$T/r.html" "$T/dump"
check "the evidence page shows the chain" sh -c "grep -q '<tr class=\"layer\"><td>1</td><td>vendor-a</td>' '$T/r.html' && grep -q 'sub-x' '$T/r.html'"
check "scan JSONL has the layers" grep -q "\"layers\":\[{\"layer\":0,.*\"delegate\":\"vendor-a\",\"issue_id\":\"$IDV\"" "$T/scan.jsonl"

# damaged delegated key files: refused, exit 3, one line, no key bytes
SECRET=$(sed -n 's/^secret //p' "$T/va.key")
bad_key() { # name (a file made in $T)
    chmod 600 "$T/$1"
    expect 3 "$1" -- "$CELMARK" key info "$T/$1"
    check "$1: one line" one_line_err
    check "$1: no key bytes" sh -c "! grep -q '$(printf %.24s "$SECRET")' '$T/err'"
}
head -c 400 "$T/va.key" >"$T/trunc.key"
sed '/^cert /s/^\(cert .\{40\}\)\(.\)/\1X\2/; s/X0/1/; s/X[^0]/0/' "$T/va.key" >"$T/badcert.key"
sed 's/^layer 1$/layer 5/' "$T/va.key" >"$T/deep.key"
sed "s/^name vendor-a$/name vendor$(printf '\033')a/" "$T/va.key" >"$T/ctrl.key"
check "the damaged copies differ from the key" sh -c "! cmp -s '$T/va.key' '$T/badcert.key'"
for k in trunc.key badcert.key deep.key ctrl.key; do
    bad_key "$k"
done

# the vendor's key reads its own layer, never the studio's
expect 0 '' -- "$CELMARK" verify -k "$T/va.key" -l "$T/va.db" "$T/v.png"
check "vendor key finds its copy" grep -qx "issue_id: $IDV" "$T/out"
check "vendor key does not name the studio's id" sh -c "! grep -q '$IDS' '$T/out'"
# an unrelated studio key finds nothing
expect 1 '' -- "$CELMARK" verify -k "$T/other.key" "$T/v.png"
check "unrelated key: no mark" grep -qx 'marked: no' "$T/out"

finish
