#!/bin/sh
# Fidelity of stamped PNG copies: pngcheck and exiftool report the same
# about source and copy; a tRNS colour key hides exactly the same pixels.
. "$(dirname "$0")/common.shlib"
need pngcheck exiftool "$CONVERT" /usr/bin/compare

compare_png() {
    same_report "$(basename "$1")" norm_pngcheck "$1" "$2" -- pngcheck -v
    same_report "$(basename "$1")" norm_exiftool "$1" "$2" -- exiftool -a -G1 -s
}

# same_alpha SRC COPY: no pixel changed between shown and transparent
same_alpha() {
    "$CONVERT" "$1" -alpha extract "$T/alpha1.png" &&
        "$CONVERT" "$2" -alpha extract "$T/alpha2.png" &&
        [ "$(/usr/bin/compare -metric AE "$T/alpha1.png" "$T/alpha2.png" null: 2>&1)" = 0 ]
}

# A 132-byte ICC profile header (no tags): enough for iCCP and exiftool.
printf '\000\000\000\204none\002\020\000\000mntrRGB XYZ \007\352\000\001\000\001\000\000\000\000\000\000acsp' >"$T/p.icc"
head -c 92 /dev/zero >>"$T/p.icc"

# 1. 16-bit RGB with iCCP, gAMA, cHRM, pHYs, tEXt, zTXt, iTXt and eXIf
"$CONVERT" -seed 4 -size 320x240 plasma: -depth 16 -density 72 -units PixelsPerInch \
    -set comment "plate 12" "PNG48:$T/rgb16.png" || fail "make rgb16"
exiftool -q -overwrite_original "-ICC_Profile<=$T/p.icc" -PNG:Author=Ink \
    -PNG:Description="long text, compressed" -XMP:Title="titre é" \
    -EXIF:Artist=someone -EXIF:Copyright=studio "$T/rgb16.png" 2>/dev/null ||
    fail "tag rgb16"
stamp "$T/rgb16.png" "$T/rgb16 out.png" && compare_png "$T/rgb16.png" "$T/rgb16 out.png"

# 2. grey + alpha, 8-bit, with sRGB
"$CONVERT" -seed 5 -size 320x240 plasma: -colorspace gray \
    \( +clone -fx 'i/w' \) -alpha off -compose copy_opacity -composite \
    -define png:color-type=4 -intent Perceptual "$T/ga.png" || fail "make ga"
stamp "$T/ga.png" "$T/ga out.png" && compare_png "$T/ga.png" "$T/ga out.png"
check "grey+alpha: alpha unchanged" same_alpha "$T/ga.png" "$T/ga out.png"

# 3. tRNS colour keys, RGB and grey: the same pixels transparent
"$CONVERT" -seed 1 -size 320x240 plasma:red-blue -fill white \
    -draw 'rectangle 50,100 250,200' -transparent white "PNG24:$T/key.png" || fail "make key"
stamp "$T/key.png" "$T/key out.png" && compare_png "$T/key.png" "$T/key out.png"
check "RGB tRNS key: the same pixels transparent" same_alpha "$T/key.png" "$T/key out.png"
"$CONVERT" -seed 3 -size 320x240 plasma: -colorspace gray -depth 8 -fill 'gray(128)' \
    -draw 'rectangle 50,100 250,200' "$T/grey.png" &&
    "$CONVERT" "$T/grey.png" -transparent 'gray(128)' -define png:color-type=0 \
        -define png:bit-depth=8 "$T/gkey.png" || fail "make gkey"
stamp "$T/gkey.png" "$T/gkey out.png" && compare_png "$T/gkey.png" "$T/gkey out.png"
check "grey tRNS key: the same pixels transparent" same_alpha "$T/gkey.png" "$T/gkey out.png"

# 4. palette: written as RGB (announced); its chunks kept
"$CONVERT" -seed 6 -size 320x240 plasma: -colors 64 -set comment "pal" "PNG8:$T/pal.png" ||
    fail "make pal"
stamp "$T/pal.png" "$T/pal out.png" && {
    CHECKS=$((CHECKS + 1))
    grep -q 'palette source written as RGB' "$T/stamp.err" || fail "palette: no conversion note"
    # the layout differs by design (docs/formats.md): compare all but IHDR/PLTE fields
    norm_pal() { norm_exiftool | grep -Ev '\] *(ColorType|Palette|BitDepth) ' || true; }
    same_report pal.png norm_pal "$T/pal.png" "$T/pal out.png" -- exiftool -a -G1 -s
}

# 5. sCAL, pCAL, cLLI, mDCV (PNG 3rd edition HDR chunks): kept
if command -v python3 >/dev/null 2>&1; then
    python3 - "$T/grey.png" "$T/ext.png" "$T/hdr.png" <<'PY' || fail "make ext"
import struct, sys, zlib
def chunk(t, d):
    return struct.pack('>I', len(d)) + t + d + struct.pack('>I', zlib.crc32(t + d) & 0xffffffff)
b = open(sys.argv[1], 'rb').read()
i = b.index(b'IDAT') - 4
scal = chunk(b'sCAL', b'\x010.5\x000.25')
pcal = chunk(b'pCAL', b'calib\x00' + struct.pack('>ii', 0, 255) + b'\x00\x02m\x000\x001')
hdr = (chunk(b'cLLI', struct.pack('>II', 10000000, 5000000)) +
       chunk(b'mDCV', bytes.fromhex('8a483a98170d4ce80bb8050c3d13406d05f5e1000000000a')))
open(sys.argv[2], 'wb').write(b[:i] + scal + pcal + b[i:])
open(sys.argv[3], 'wb').write(b[:i] + hdr + b[i:])
PY
    stamp "$T/ext.png" "$T/ext out.png" && compare_png "$T/ext.png" "$T/ext out.png"
    # pngcheck 3.0 stops at cLLI/mDCV (too new for it): exiftool, and the
    # chunks' bytes themselves
    list_chunks() {
        python3 -c '
import struct, sys
b = open(sys.argv[1], "rb").read(); p = 8
while p < len(b):
    n, = struct.unpack(">I", b[p:p + 4]); t = b[p + 4:p + 8]
    if t in (b"cLLI", b"mDCV"): print(t.decode(), b[p + 8:p + 8 + n].hex())
    p += 12 + n' "$1"
    }
    stamp "$T/hdr.png" "$T/hdr out.png" && {
        same_report hdr.png norm_exiftool "$T/hdr.png" "$T/hdr out.png" -- exiftool -a -G1 -s
        same_report hdr.png cat "$T/hdr.png" "$T/hdr out.png" -- list_chunks
        check "cLLI and mDCV are in the copy" \
            test "$(list_chunks "$T/hdr out.png" | wc -l)" -eq 2
    }
    # 6. a tEXt chunk with an empty keyword (as in libpng's own test
    #    images): read, then dropped with a warning, never an internal error
    python3 - "$T/grey.png" "$T/emptykw.png" <<'PY' || fail "make emptykw"
import struct, sys, zlib
def chunk(t, d):
    return struct.pack('>I', len(d)) + t + d + struct.pack('>I', zlib.crc32(t + d) & 0xffffffff)
b = open(sys.argv[1], 'rb').read()
open(sys.argv[2], 'wb').write(b[:33] + chunk(b'tEXt', b'\x00no keyword') +
                              chunk(b'tEXt', b'Title\x00kept') + b[33:])
PY
    stamp "$T/emptykw.png" "$T/emptykw out.png" 'tEXt chunk "" not kept: empty keyword' && {
        CHECKS=$((CHECKS + 1))
        grep -q 'celmark: warning: .*emptykw out.png: tEXt chunk "" not kept: empty keyword' \
            "$T/stamp.err" || fail "empty keyword: no 'not kept' warning"
        check "empty keyword: the copy passes pngcheck" pngcheck -q "$T/emptykw out.png"
        CHECKS=$((CHECKS + 1))
        exiftool -s -Title "$T/emptykw out.png" | grep -q kept || fail "empty keyword: Title lost"
    }
else
    echo "note: python3 missing, the sCAL/pCAL/cLLI/mDCV and keyword cases are skipped"
fi

finish
