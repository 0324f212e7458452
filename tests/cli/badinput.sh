# info on bad input: one clear line naming the file, exit 3, no output left.
. "$(dirname "$0")/common.shlib"

"$CELMARK_GEN" "$T/good.png" 96 64 7 || exit 1
printf 'this is not an image\n' >"$T/notpng.png"
: >"$T/empty.png"
head -c 200 "$T/good.png" >"$T/truncated.png"
# flip one byte in the middle of the file (inside IDAT): CRC mismatch
cp "$T/good.png" "$T/crc.png"
size=$(wc -c <"$T/good.png")
off=$((size / 2))
byte=$(od -An -tu1 -j "$off" -N1 "$T/good.png" | tr -d ' ')
printf "$(printf '\\%03o' $(((byte + 1) % 256)))" |
    dd of="$T/crc.png" bs=1 seek="$off" conv=notrunc status=none

for f in notpng empty truncated crc; do
    expect 3 "^celmark: .*$f\.png: " -- "$CELMARK" info "$T/$f.png"
    check "$f: one line" one_line_err
    check "$f: nothing on stdout" [ ! -s "$T/out" ]
done
expect 3 "not a recognised image format" -- "$CELMARK" info "$T/notpng.png"
expect 3 "empty" -- "$CELMARK" info "$T/empty.png"
expect 3 "missing.png: .*No such file" -- "$CELMARK" info "$T/missing.png"
check "missing: one line" one_line_err
expect 3 "huge-dimensions.png: .*limit" -- "$CELMARK" info "$CELMARK_SRC/tests/bad/huge-dimensions.png"
# a good file after a bad one still prints, and the exit code reports the bad one
expect 3 "notpng.png" -- "$CELMARK" info "$T/notpng.png" "$T/good.png"
check "good file still described" grep -q 'size: 96x64' "$T/out"
expect 3 "notpng.png" -- "$CELMARK" info --json "$T/notpng.png"
check "json error object" grep -q '"error":' "$T/out"

finish
