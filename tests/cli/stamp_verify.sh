# keygen -> stamp -> verify round trip through the command, and its errors.
. "$(dirname "$0")/common.shlib"

"$CELMARK_GEN" "$T/in.png" 640 360 5 || exit 1

expect 0 '' -- "$CELMARK" keygen "$T/k.key"
check "keygen prints fingerprint" grep -Eq '^fingerprint: ([0-9a-f]{4}:){7}[0-9a-f]{4}$' "$T/out"
check "key mode 0600" [ "$(stat -c %a "$T/k.key")" = 600 ]
expect 3 "already exists" -- "$CELMARK" keygen "$T/k.key"
expect 0 '' -- "$CELMARK" keygen "$T/other.key"

# stamp: usage errors
expect 2 "no key given" -- "$CELMARK" stamp --id 0123456789abcdef "$T/in.png" "$T/o.png"
expect 2 "16 hex digits" -- "$CELMARK" stamp -k "$T/k.key" --id 12345 "$T/in.png" "$T/o.png"
expect 2 "expected IN and OUT" -- "$CELMARK" stamp -k "$T/k.key" --id 0123456789abcdef "$T/in.png"
expect 2 "unknown profile" -- "$CELMARK" stamp -k "$T/k.key" --id 0123456789abcdef --profile loud "$T/in.png" "$T/o.png"
expect 2 "strength" -- "$CELMARK" stamp -k "$T/k.key" --id 0123456789abcdef --strength 9 "$T/in.png" "$T/o.png"
expect 2 "needs a value" -- "$CELMARK" stamp -k "$T/k.key" "$T/in.png" "$T/o.png" --id
check "no output after usage errors" [ ! -e "$T/o.png" ]

# stamp: deterministic output, refuses to overwrite
expect 0 '' -- "$CELMARK" stamp -k "$T/k.key" --id 0123456789abcdef "$T/in.png" "$T/a.png"
expect 0 '' -- "$CELMARK" stamp -k "$T/k.key" --id 0123456789abcdef "$T/in.png" "$T/b.png"
check "same key+id+input -> same bytes" cmp -s "$T/a.png" "$T/b.png"
# what was done to the frame, per pixel as CIEDE2000, within the default
# profile's budget of 2.0
check "stamp prints the colour difference" grep -Eq '^delta_e00_p99\.9: [0-9]+\.[0-9]{2}$' "$T/out"
de_max=$(sed -n 's/^delta_e00_max: //p' "$T/out")
check "no pixel past the budget ($de_max)" awk -v m="$de_max" 'BEGIN { exit !(m > 0 && m <= 2.0) }'
# the optimised kernels (vectorised, AVX2 where the CPU has it) and the
# reference ones give the same bytes: a stamp does not depend on the machine
CELMARK_DSP=c "$CELMARK" stamp -k "$T/k.key" --id 0123456789abcdef "$T/in.png" "$T/c.png" >/dev/null
check "reference DSP kernels -> same bytes" cmp -s "$T/a.png" "$T/c.png"
rm -f "$T/c.png"
check "stamped differs from input" sh -c "! cmp -s '$T/in.png' '$T/a.png'"
# a frame of flat fills stamped --cel-safe keeps little room for the mark:
# stamp checks its own result and warns, but the copy is written
"$CELMARK_GEN" "$T/flat.png" 640 360 3 3 8 1 || exit 1
expect 0 "warning: .*flat-safe.png: the mark (cannot be found again|is weak).*--cel-safe" -- \
    "$CELMARK" stamp --cel-safe -k "$T/k.key" --id 0123456789abcdef "$T/flat.png" "$T/flat-safe.png"
check "warned copy written" [ -s "$T/flat-safe.png" ]
expect 0 '' -- "$CELMARK" stamp -k "$T/k.key" --id 0123456789abcdef "$T/flat.png" "$T/flat-def.png"
rm -f "$T/flat.png" "$T/flat-safe.png" "$T/flat-def.png"
expect 3 "already exists; use --force" -- "$CELMARK" stamp -k "$T/k.key" --id 0123456789abcdef "$T/in.png" "$T/a.png"
expect 0 '' -- "$CELMARK" stamp -f -k "$T/k.key" --id 0123456789abcdef "$T/in.png" "$T/a.png"

# stamp: bad inputs leave nothing behind
expect 3 "missing/o.png" -- "$CELMARK" stamp -k "$T/k.key" --id 0123456789abcdef "$T/in.png" "$T/missing/o.png"
printf 'garbage' >"$T/bad.png"
expect 3 "bad.png" -- "$CELMARK" stamp -k "$T/k.key" --id 0123456789abcdef "$T/bad.png" "$T/c.png"
check "no output for bad input" [ ! -e "$T/c.png" ]
check "no temp files left" no_temp_files "$T"
cp "$T/k.key" "$T/loose.key"
chmod 644 "$T/loose.key"
expect 3 "readable by group or others" -- "$CELMARK" stamp -k "$T/loose.key" --id 0123456789abcdef "$T/in.png" "$T/c.png"
expect 3 "nokey" -- "$CELMARK" stamp -k "$T/nokey" --id 0123456789abcdef "$T/in.png" "$T/c.png"
check "no output for bad key" [ ! -e "$T/c.png" ]

expect 3 "cannot write jpg files; write a .png" -- "$CELMARK" stamp -k "$T/k.key" --id 0123456789abcdef "$T/in.png" "$T/c.jpg"
check "no .jpg written" [ ! -e "$T/c.jpg" ]

# verify: finds the id, blind and with candidates; unmarked and other key say no
expect 0 '' -- "$CELMARK" verify -k "$T/k.key" "$T/a.png"
check "verify: marked" grep -qx 'marked: yes' "$T/out"
check "verify: id" grep -qx 'issue_id: 0123456789abcdef' "$T/out"
printf '# ids\nfedcba9876543210\n0123456789abcdef\n' >"$T/cands.txt"
expect 0 '' -- "$CELMARK" verify -k "$T/k.key" --json --candidates "$T/cands.txt" "$T/a.png"
check "json: marked id" grep -q '"marked":true,"issue_id":"0123456789abcdef"' "$T/out"
check "json: fields" grep -q '"fpr":.*"scale":.*"rotation_deg":.*"flipped":false' "$T/out"
# leaked frames are rarely PNGs: a JPEG of the stamped copy
if command -v ffmpeg >/dev/null; then
    ffmpeg -loglevel error -y -i "$T/a.png" -q:v 4 "$T/a.jpg"
    expect 0 '' -- "$CELMARK" verify -k "$T/k.key" "$T/a.jpg"
    check "jpeg: id" grep -qx 'issue_id: 0123456789abcdef' "$T/out"
    # stamping a JPEG source into a PNG works
    expect 0 'yuv source written as RGB' -- "$CELMARK" stamp -k "$T/k.key" --id 00000000000000aa "$T/a.jpg" "$T/from-jpeg.png"
fi
expect 1 '' -- "$CELMARK" verify -k "$T/k.key" "$T/in.png"
check "unmarked: marked no" grep -qx 'marked: no' "$T/out"
expect 1 '' -- "$CELMARK" verify -k "$T/other.key" --json "$T/a.png"
check "other key: not marked" grep -q '"marked":false,"issue_id":null' "$T/out"
expect 3 "bad.png" -- "$CELMARK" verify -k "$T/k.key" "$T/a.png" "$T/bad.png"
printf 'xyz\n' >"$T/badcands.txt"
expect 3 "badcands.txt:1" -- "$CELMARK" verify -k "$T/k.key" --candidates "$T/badcands.txt" "$T/a.png"
expect 2 "no input file" -- "$CELMARK" verify -k "$T/k.key"

finish
