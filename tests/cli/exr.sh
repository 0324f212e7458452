# EXR through the command: stamp an .exr into an .exr (and a .png), verify
# it, describe it, refuse a damaged one. The input is a plain half EXR that
# celmark_mkframe writes for an .exr name.
. "$(dirname "$0")/common.shlib"

"$CELMARK_GEN" "$T/in.exr" 640 360 5 || exit 1
"$CELMARK_GEN" "$T/rgba.exr" 640 360 6 4 16 || exit 1
expect 0 '' -- "$CELMARK" keygen "$T/k.key"

expect 0 '' -- "$CELMARK" info "$T/in.exr"
check "info: format" grep -qx 'format: exr' "$T/out"
check "info: half" grep -qx 'bit_depth: 16' "$T/out"
check "info: compression" grep -qx 'compression: zip' "$T/out"
check "info: encoding" grep -q '^encoding: linear half as 16-bit sRGB' "$T/out"
expect 0 '' -- "$CELMARK" info --json "$T/rgba.exr"
check "json: rgba exr" grep -q '"format":"exr".*"color_type":"rgba"' "$T/out"

# stamp EXR -> EXR: deterministic, changed, verifiable
expect 0 '' -- "$CELMARK" stamp -k "$T/k.key" --id 0123456789abcdef "$T/in.exr" "$T/a.exr"
expect 0 '' -- "$CELMARK" stamp -k "$T/k.key" --id 0123456789abcdef "$T/in.exr" "$T/b.exr"
check "same key+id+input -> same bytes" cmp -s "$T/a.exr" "$T/b.exr"
check "stamped differs from input" sh -c "! cmp -s '$T/in.exr' '$T/a.exr'"
expect 0 '' -- "$CELMARK" info "$T/a.exr"
check "output is EXR" grep -qx 'format: exr' "$T/out"
expect 0 '' -- "$CELMARK" verify -k "$T/k.key" "$T/a.exr"
check "verify: marked" grep -qx 'marked: yes' "$T/out"
check "verify: id" grep -qx 'issue_id: 0123456789abcdef' "$T/out"
expect 1 '' -- "$CELMARK" verify -k "$T/k.key" "$T/in.exr"
check "unmarked EXR: marked no" grep -qx 'marked: no' "$T/out"

# with alpha, cel-safe, and into a PNG
# (the fills of this frame hold most of it: cel-safe leaves too little)
expect_stamped 'c\.exr' -- \
    "$CELMARK" stamp -k "$T/k.key" --id 00000000000000aa --cel-safe "$T/rgba.exr" "$T/c.exr"
expect 0 '' -- "$CELMARK" stamp -k "$T/k.key" --id 00000000000000bb "$T/in.exr" "$T/d.png"
expect 0 '' -- "$CELMARK" verify -k "$T/k.key" "$T/d.png"
check "EXR -> PNG: id" grep -qx 'issue_id: 00000000000000bb' "$T/out"

# with a ledger (the stamp goes through a temp file named after the output)
expect 0 '' -- "$CELMARK" stamp -k "$T/k.key" -l "$T/l.db" --recipient "Vendor A" --asset sh010 "$T/in.exr" "$T/e.exr"
ide=$(sed -n 's/^issue_id: //p' "$T/out")
expect 0 '' -- "$CELMARK" verify -k "$T/k.key" -l "$T/l.db" "$T/e.exr"
check "ledger: recipient" grep -qx 'recipient: Vendor A' "$T/out"
check "ledger: id" grep -qx "issue_id: $ide" "$T/out"

# damaged EXRs: one line naming the file, exit 3, nothing written
head -c 600 "$T/in.exr" >"$T/cut.exr"
expect 3 "^celmark: .*cut\.exr: .*EXR" -- "$CELMARK" info "$T/cut.exr"
check "cut: one line" one_line_err
expect 3 "cut\.exr" -- "$CELMARK" stamp -k "$T/k.key" --id 0123456789abcdef "$T/cut.exr" "$T/f.exr"
check "no output for a damaged input" [ ! -e "$T/f.exr" ]
printf 'v/1\001garbage' >"$T/junk.exr"
expect 3 "junk\.exr" -- "$CELMARK" verify -k "$T/k.key" "$T/junk.exr"
check "no temp files left" no_temp_files "$T"

finish
