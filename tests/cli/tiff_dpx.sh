# stamp -> verify on TIFF and DPX through the command: the output keeps the
# source's format, tags and header; damaged files are refused.
. "$(dirname "$0")/common.shlib"

# RGBA 16-bit (opaque textured background) tiled LZW TIFF with tags, EXIF and a second page; 10-bit DPX
# with timecode, film data and user data (image at offset 4096)
"$CELMARK_GEN" "$T/in.tif" 640 360 5 4 16 3 || exit 1
"$CELMARK_GEN" "$T/in.dpx" 640 360 6 3 10 || exit 1
expect 0 '' -- "$CELMARK" keygen "$T/k.key"

# TIFF: stamped in place of format, described the same, verified
expect 0 '' -- "$CELMARK" info "$T/in.tif"
check "tiff: format" grep -qx 'format: tiff' "$T/out"
check "tiff: compression" grep -qx 'compression: lzw' "$T/out"
check "tiff: tiles" grep -qx 'layout: tiles of 64 x 64' "$T/out"
check "tiff: pages" grep -q '^pages: 2 (only the first is marked' "$T/out"
grep -v '^file:' "$T/out" >"$T/info-in.txt"
expect 0 '' -- "$CELMARK" stamp -k "$T/k.key" --id 0123456789abcdef "$T/in.tif" "$T/a.tif"
expect 0 '' -- "$CELMARK" stamp -k "$T/k.key" --id 0123456789abcdef "$T/in.tif" "$T/b.tif"
check "tiff: same key+id+input -> same bytes" cmp -s "$T/a.tif" "$T/b.tif"
check "tiff: stamped differs from input" sh -c "! cmp -s '$T/in.tif' '$T/a.tif'"
expect 0 '' -- "$CELMARK" info "$T/a.tif"
grep -v '^file:' "$T/out" >"$T/info-a.txt"
check "tiff: tags described identically" cmp -s "$T/info-in.txt" "$T/info-a.txt"
expect 0 '' -- "$CELMARK" verify -k "$T/k.key" "$T/a.tif"
check "tiff: marked" grep -qx 'marked: yes' "$T/out"
check "tiff: id" grep -qx 'issue_id: 0123456789abcdef' "$T/out"
expect 1 '' -- "$CELMARK" verify -k "$T/k.key" "$T/in.tif"
# a PNG stamped into a TIFF: a plain Deflate TIFF
"$CELMARK_GEN" "$T/in.png" 640 360 7 || exit 1
expect 0 '' -- "$CELMARK" stamp -k "$T/k.key" --id 00000000000000bb "$T/in.png" "$T/from-png.tif"
expect 0 '' -- "$CELMARK" info "$T/from-png.tif"
check "png->tiff: deflate" grep -qx 'compression: deflate' "$T/out"
expect 0 '' -- "$CELMARK" verify -k "$T/k.key" "$T/from-png.tif"
check "png->tiff: id" grep -qx 'issue_id: 00000000000000bb' "$T/out"

# DPX: only the pixel payload changes
expect 0 '' -- "$CELMARK" info "$T/in.dpx"
check "dpx: format" grep -qx 'format: dpx' "$T/out"
check "dpx: depth" grep -qx 'bit_depth: 10' "$T/out"
check "dpx: timecode" grep -qx 'timecode: 01:02:03:04' "$T/out"
expect 0 '' -- "$CELMARK" stamp -k "$T/k.key" --id 00000000000000aa "$T/in.dpx" "$T/a.dpx"
check "dpx: same size" [ "$(wc -c <"$T/in.dpx")" -eq "$(wc -c <"$T/a.dpx")" ]
check "dpx: header and user data unchanged" cmp -s -n 4096 "$T/in.dpx" "$T/a.dpx"
check "dpx: pixels changed" sh -c "! cmp -s '$T/in.dpx' '$T/a.dpx'"
expect 0 '' -- "$CELMARK" verify -k "$T/k.key" "$T/a.dpx"
check "dpx: id" grep -qx 'issue_id: 00000000000000aa' "$T/out"
expect 1 '' -- "$CELMARK" verify -k "$T/k.key" "$T/in.dpx"

# damaged files: one line naming the file, exit 3, nothing written
head -c 6000 "$T/in.dpx" >"$T/cut.dpx"
expect 3 "cut.dpx: truncated DPX" -- "$CELMARK" stamp -k "$T/k.key" --id 00000000000000aa "$T/cut.dpx" "$T/c.dpx"
check "cut dpx: one line" one_line_err
check "cut dpx: no output" [ ! -e "$T/c.dpx" ]
head -c 2000 "$T/in.tif" >"$T/cut.tif"
expect 3 "cut.tif: " -- "$CELMARK" stamp -k "$T/k.key" --id 00000000000000aa "$T/cut.tif" "$T/c.tif"
check "cut tif: one line" one_line_err
check "cut tif: no output" [ ! -e "$T/c.tif" ]
# DPX has no grey+alpha layout
"$CELMARK_GEN" "$T/ga.png" 96 64 3 2 8 || exit 1
expect 3 "ga.dpx: DPX has no grey\+alpha layout" -- "$CELMARK" stamp -k "$T/k.key" --id 00000000000000aa "$T/ga.png" "$T/ga.dpx"
check "grey+alpha: no output" [ ! -e "$T/ga.dpx" ]
check "no temp files left" no_temp_files "$T"

finish
