# Image sequences: #### and %04d patterns, oiiotool frame ranges, one mark
# over every frame, and all-or-nothing output on bad sequences.
. "$(dirname "$0")/common.shlib"

A=00000000000000aa
"$CELMARK" keygen "$T/k.key" >/dev/null || exit 1
mkdir -p "$T/s"
for f in 1001 1002 1003 1004 1005; do "$CELMARK_GEN" "$T/s/in.$f.png" 320 240 $f || exit 1; done

# frame 1005 (320x240 of fine texture, smaller than one tile of the mark)
# is one the detector often cannot sync on: stamp's self-check says so
expect_stamped 'out\.1005\.png' -- \
    "$CELMARK" stamp -k "$T/k.key" --id $A "$T/s/in.####.png" "$T/s/out.####.png"
check "five frames reported" grep -q '^frames: 5$' "$T/out"
for f in 1001 1002 1003 1004 1005; do check "out.$f.png exists" [ -s "$T/s/out.$f.png" ]; done
check "no temporary folder left" no_temp_files "$T/s"
expect 0 '' -- "$CELMARK" verify -k "$T/k.key" "$T/s/out.####.png"
check "sequence verified as one clip" grep -q "^segment: 00:00:00:00-00:00:00:05 frames 0-4 issue_id=$A" "$T/out"
check "type sequence" grep -q '^type: sequence$' "$T/out"
expect 1 '' -- "$CELMARK" verify -k "$T/k.key" "$T/s/in.####.png"
expect 0 '' -- "$CELMARK" info "$T/s/out.####.png"
check "info: sequence frames and range" sh -c "grep -qx 'sequence_frames: 5' '$T/out' && grep -qx 'sequence_range: 1001-1005' '$T/out' && grep -qx 'size: 320x240' '$T/out'"
expect 3 "already exists" -- "$CELMARK" stamp -k "$T/k.key" --id $A "$T/s/in.####.png" "$T/s/out.####.png"

# printf pattern with an every-2nd range; oiiotool range written in the name
expect_stamped 'odd\.1005\.png' -- \
    "$CELMARK" stamp -k "$T/k.key" --id $A --frames 1001-1005x2 "$T/s/in.%04d.png" "$T/s/odd.%04d.png"
check "x2 takes 1001 1003 1005" [ "$(count_names "$T/s" 'odd.*')" = 3 ] && [ -e "$T/s/odd.1003.png" ] && [ ! -e "$T/s/odd.1002.png" ]
expect 0 '' -- "$CELMARK" stamp -k "$T/k.key" --id $A "$T/s/in.1002-1003####.png" "$T/s/two.####.png"
check "embedded range" [ -e "$T/s/two.1002.png" ] && [ -e "$T/s/two.1003.png" ] && [ ! -e "$T/s/two.1001.png" ]
expect 2 "both be sequence patterns" -- "$CELMARK" stamp -k "$T/k.key" --id $A "$T/s/in.####.png" "$T/s/x.png"
expect 2 "frame range" -- "$CELMARK" stamp -k "$T/k.key" --id $A --frames 9-1 "$T/s/in.####.png" "$T/s/r.####.png"

# bad sequences: nothing written
expect 3 "no frame of this sequence" -- "$CELMARK" stamp -k "$T/k.key" --id $A "$T/s/none.####.png" "$T/s/e.####.png"
expect 3 "frame 1006 is missing" -- "$CELMARK" stamp -k "$T/k.key" --id $A --frames 1004-1010 "$T/s/in.####.png" "$T/s/m.####.png"
check "no output for a missing frame (range)" [ "$(count_names "$T/s" 'm.*')" = 0 ]
mv "$T/s/in.1003.png" "$T/s/hold.png"
expect 3 "frame 1003 is missing" -- "$CELMARK" stamp -k "$T/k.key" --id $A "$T/s/in.####.png" "$T/s/g.####.png"
check "no output for a gap" [ "$(count_names "$T/s" 'g.*')" = 0 ]
expect 3 "frame 1003 is missing" -- "$CELMARK" verify -k "$T/k.key" "$T/s/in.####.png"
"$CELMARK_GEN" "$T/s/in.1003.png" 400 240 3 || exit 1
expect 3 "one frame size" -- "$CELMARK" stamp -k "$T/k.key" --id $A "$T/s/in.####.png" "$T/s/z.####.png"
check "no output for mismatched sizes" [ "$(count_names "$T/s" 'z.*')" = 0 ]
check "no temporary folder left after failures" no_temp_files "$T/s"
printf 'not a png' >"$T/s/in.1003.png"
expect 3 "in.1003.png" -- "$CELMARK" stamp -k "$T/k.key" --id $A "$T/s/in.####.png" "$T/s/c.####.png"
check "no output for a corrupt frame" [ "$(count_names "$T/s" 'c.*')" = 0 ]

finish
