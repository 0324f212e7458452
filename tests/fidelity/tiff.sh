#!/bin/sh
# Fidelity of stamped TIFF copies: tiffinfo, tiffdump and exiftool report
# the same about source and copy, in both byte orders.
. "$(dirname "$0")/common.shlib"
need tiffinfo tiffdump tiffcp exiftool "$CONVERT"

# has_interop FILE: exiftool finds InteropIndex R98 in its InteropIFD
has_interop() {
    exiftool -a -G1 -s "$1" | grep -q '^\[InteropIFD\] *InteropIndex *: R98'
}

# dump_private_ifds FILE: tiffdump of the first page's EXIF IFD and of the
# Interoperability IFD it points to
dump_private_ifds() {
    exif=$(tiffdump "$1" | sed -n 's/^\(ExifIFD (34665)\|34665 (0x8769)\) [^<]*<\([0-9a-fx]*\)>$/\2/p')
    [ -n "$exif" ] || { echo "no EXIF IFD"; return; }
    echo "EXIF IFD:"
    tiffdump -o "$exif" "$1"
    iop=$(tiffdump -o "$exif" "$1" | sed -n 's/^\([A-Za-z]* (40965)\|40965 (0xa005)\) [^<]*<\([0-9a-fx]*\)>$/\2/p')
    [ -n "$iop" ] || { echo "no Interoperability IFD"; return; }
    echo "Interoperability IFD:"
    tiffdump -o "$iop" "$1"
}

compare_tiff() {
    same_report "$(basename "$1")" norm_tiffinfo "$1" "$2" -- tiffinfo
    same_report "$(basename "$1")" norm_tiffdump "$1" "$2" -- tiffdump
    same_report "$(basename "$1")" norm_exiftool "$1" "$2" -- exiftool -a -G1 -s
}

printf '\000\000\000\204none\002\020\000\000mntrRGB XYZ \007\352\000\001\000\001\000\000\000\000\000\000acsp' >"$T/p.icc"
head -c 92 /dev/zero >>"$T/p.icc"

# 16-bit RGB with EXIF tags, XMP, ICC and IPTC, little- and big-endian
# (tiffcp -B), LZW with predictor
"$CONVERT" -seed 2 -size 320x240 plasma: -depth 16 "$T/le16.tif" || fail "make le16"
exiftool -q -overwrite_original "-ICC_Profile<=$T/p.icc" -IPTC:Keywords=plate \
    -XMP:Title="titre é" -EXIF:Artist=someone -EXIF:Make=X -IFD0:ImageDescription=desc \
    "$T/le16.tif" || fail "tag le16"
tiffcp -B -c lzw:2 "$T/le16.tif" "$T/be16.tif" || fail "make be16"
tiffcp -L -c zip:2 "$T/le16.tif" "$T/le16z.tif" || fail "make le16z"
for f in le16 be16 le16z; do
    stamp "$T/$f.tif" "$T/$f out.tif" && compare_tiff "$T/$f.tif" "$T/$f out.tif"
done

# 8-bit grey with alpha, big-endian, tiled
"$CONVERT" -seed 7 -size 320x240 plasma: -colorspace gray -depth 8 \
    \( +clone -fx 'j/h' \) -alpha off -compose copy_opacity -composite "$T/ga.tif" &&
    tiffcp -B -t -w 64 -l 64 "$T/ga.tif" "$T/ga be.tif" || fail "make ga"
exiftool -q -overwrite_original -IPTC:Keywords=matte "$T/ga be.tif" 2>/dev/null || fail "tag ga"
stamp "$T/ga be.tif" "$T/ga out.tif" && compare_tiff "$T/ga be.tif" "$T/ga out.tif"

# multi-page: the first page marked, the others copied
"$CONVERT" -seed 8 -size 320x240 plasma: plasma: -depth 8 "$T/pages.tif" || fail "make pages"
stamp "$T/pages.tif" "$T/pages out.tif" && compare_tiff "$T/pages.tif" "$T/pages out.tif"

# an Interoperability IFD in the EXIF IFD (as exiftool writes it: LONG
# pointers), little- and big-endian: kept entry for entry, no warning.
# tiffdump does not follow private IFDs: dump_private_ifds dumps them too.
"$CONVERT" -seed 3 -size 64x48 plasma: -depth 8 "$T/iop.tif" &&
    tiffcp -B "$T/iop.tif" "$T/iop be.tif" || fail "make iop"
for f in iop "iop be"; do
    exiftool -q -overwrite_original -InteropIndex=R98 -InteropVersion=0100 \
        "-DateTimeOriginal=2024:01:02 03:04:05" "$T/$f.tif" || fail "tag $f"
    check "$f: the source has no InteropIFD" has_interop "$T/$f.tif"
    check "$f: info does not list the InteropIFD as kept" sh -c \
        '"$1" info "$2" | grep -q "^exif: yes, with an Interoperability IFD (kept)$"' \
        - "$CELMARK" "$T/$f.tif"
    stamp "$T/$f.tif" "$T/$f out.tif" && {
        compare_tiff "$T/$f.tif" "$T/$f out.tif"
        same_report "$f (EXIF and Interop IFDs)" norm_tiffdump "$T/$f.tif" "$T/$f out.tif" \
            -- dump_private_ifds
        check "$f: the copy has no InteropIFD" has_interop "$T/$f out.tif"
    }
done

# palette and float TIFFs are read through libav: written as plain RGB,
# their tags announced (never dropped silently)
"$CONVERT" -seed 9 -size 160x120 plasma: -colors 16 -type Palette -density 300 \
    -set comment "a description" "$T/pal.tif" || fail "make pal"
exiftool -q -overwrite_original -Artist=me -XMP:Title=t "$T/pal.tif"
stamp "$T/pal.tif" "$T/pal out.tif" 'not kept: the palette tiff source is read through libav' && {
    CHECKS=$((CHECKS + 1))
    grep -q 'pal out.tif: ImageDescription, Artist, resolution.*XMP not kept' "$T/stamp.err" ||
        fail "palette TIFF: lost tags not announced: $(cat "$T/stamp.err")"
}
# float samples: neither libtiff's path nor this build's libav decodes
# them: refused (exit 3), naming the layout, nothing written
"$CONVERT" -seed 10 -size 160x120 plasma: -depth 32 -define quantum:format=floating-point \
    "$T/float.tif" 2>/dev/null
if [ -s "$T/float.tif" ]; then
    stamp_refused "float TIFF" "$T/float.tif" "$T/float out.tif" floating-point
fi

finish
