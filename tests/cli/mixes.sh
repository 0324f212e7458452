# Several copies in one frame: an average of two vendors' copies and a
# left/right composite each name both (claim lines, JSON claims, mixed);
# a single copy names one; --map draws where each dominates; check
# --expect-recipient fails on a mix naming both; scan and the evidence page
# carry the claims and the map.
. "$(dirname "$0")/common.shlib"

CONVERT=/usr/bin/convert
if [ ! -x "$CONVERT" ]; then
    echo "SKIP: ImageMagick's convert (scripts/install-deps) makes the mixes"
    exit 77
fi

"$CELMARK_GEN" "$T/in.png" 1280 720 5 || exit 1
"$CELMARK" keygen "$T/k.key" >/dev/null || exit 1
L="$T/l.db"
stamp() { # recipient in out -> prints the issue id
    "$CELMARK" stamp -q -k "$T/k.key" -l "$L" --recipient "$1" --asset ep01 "$2" "$3" 2>/dev/null |
        sed -n 's/^issue_id: //p'
}
IDA=$(stamp vendor-a "$T/in.png" "$T/a.png")
IDB=$(stamp vendor-b "$T/in.png" "$T/b.png")
check "stamped two copies" [ -n "$IDA" ] && [ -n "$IDB" ]
"$CONVERT" "$T/a.png" "$T/b.png" -evaluate-sequence mean "$T/avg.png" || exit 1
"$CONVERT" "$T/a.png" -crop 640x720+0+0 +repage \( "$T/b.png" -crop 640x720+640+0 +repage \) \
    +append "$T/halves.png" || exit 1

# one copy: one claim, not mixed
expect 0 '' -- "$CELMARK" verify -k "$T/k.key" -l "$L" "$T/a.png"
check "one claim line" [ "$(grep -c '^claim: ' "$T/out")" = 1 ]
check "the claim names vendor-a" grep -q "^claim: $IDA found_by=candidate .* recipient=\"vendor-a\"" "$T/out"
check "not mixed" grep -qx 'mixed: no' "$T/out"

# the average and the composite name both copies
for mix in avg halves; do
    expect 0 '' -- "$CELMARK" verify -k "$T/k.key" -l "$L" "$T/$mix.png"
    check "$mix: two claim lines" [ "$(grep -c '^claim: ' "$T/out")" = 2 ]
    check "$mix: names vendor-a" grep -q "^claim: $IDA .*recipient=\"vendor-a\"" "$T/out"
    check "$mix: names vendor-b" grep -q "^claim: $IDB .*recipient=\"vendor-b\"" "$T/out"
    check "$mix: mixed" grep -qx 'mixed: yes' "$T/out"
    expect 0 '' -- "$CELMARK" verify --json -k "$T/k.key" -l "$L" "$T/$mix.png"
    check "$mix: JSON claims both, mixed" grep -q "\"claims\":\[{\"issue_id\":\"[0-9a-f]*\".*\"issue_id\":\"[0-9a-f]*\".*\],\"mixed\":true" "$T/out"
    check "$mix: JSON claim fields" grep -q '"share":[0-9.e-]*,"region":{"x":[0-9]*,"y":[0-9]*,"w":[0-9]*,"h":[0-9]*},"recipient":"vendor-' "$T/out"
done
# the composite: vendor-b's region is the right part of the frame
expect 0 '' -- "$CELMARK" verify -k "$T/k.key" -l "$L" "$T/halves.png"
BX=$(sed -n "s/^claim: $IDB .* region=[0-9]*x[0-9]*+\([0-9]*\)+[0-9]*.*/\1/p" "$T/out")
AX=$(sed -n "s/^claim: $IDA .* region=[0-9]*x[0-9]*+\([0-9]*\)+[0-9]*.*/\1/p" "$T/out")
check "halves: vendor-b's region starts right of vendor-a's" [ "${BX:-0}" -gt "${AX:-9999}" ]

# --map: a PNG of the cells
expect 0 '' -- "$CELMARK" verify -k "$T/k.key" -l "$L" --map "$T/map.png" "$T/halves.png"
check "map is a PNG" sh -c "head -c 8 '$T/map.png' | od -An -tx1 | grep -q '89 50 4e 47 0d 0a 1a 0a'"
check "map has the frame's size" sh -c "'$CELMARK' info '$T/map.png' | grep -qx 'size: 1280x720'"
expect 3 'exists' -- "$CELMARK" verify -k "$T/k.key" -l "$L" --map "$T/map.png" "$T/halves.png"
expect 0 '' -- "$CELMARK" verify -k "$T/k.key" -l "$L" -f --map "$T/map.png" "$T/a.png"
expect 2 'one input' -- "$CELMARK" verify -k "$T/k.key" --map "$T/m2.png" "$T/a.png" "$T/b.png"
check "no map for a usage error" [ ! -e "$T/m2.png" ]

# check: a mix that includes another recipient fails, naming both
expect 1 '' -- "$CELMARK" check -k "$T/k.key" -l "$L" --expect-recipient vendor-a "$T/avg.png"
check "check names both recipients" sh -c "grep -q 'vendor-a' '$T/out' && grep -q 'vendor-b' '$T/out'"
check "check fails the mix" grep -qx 'result: fail' "$T/out"

# scan and the evidence page carry the claims and the map
mkdir -p "$T/dump" && cp "$T/avg.png" "$T/a.png" "$T/dump/"
expect 0 '' -- "$CELMARK" scan -q -k "$T/k.key" -l "$L" --jsonl "$T/scan.jsonl" --report "$T/r.html" "$T/dump"
check "scan: the mix has two claims" sh -c "grep '/avg.png\"' '$T/scan.jsonl' | grep -q '\"claims\":\[{.*},{.*}\],\"mixed\":true'"
check "scan: the single copy is not mixed" sh -c "grep '/a.png\"' '$T/scan.jsonl' | grep -q '\"mixed\":false'"
check "report shows the claim map" grep -q 'alt="claim map"' "$T/r.html"
check "report names both copies of the mix" sh -c "grep -q 'vendor-a' '$T/r.html' && grep -q 'vendor-b' '$T/r.html'"

finish
