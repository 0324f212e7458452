#!/bin/sh
# Fidelity of stamped EXR copies: exrheader and oiiotool report the same
# about source and copy, and OpenEXR's own tools read every pixel of it.
. "$(dirname "$0")/common.shlib"
need oiiotool exrheader exrmaketiled

NOISE="--pattern noise:type=gaussian:mean=0.5:stddev=0.2"

# compare SRC COPY: the reports, and a full read of the copy by OpenEXR
compare_exr() {
    same_report "$(basename "$1")" norm_exrheader "$1" "$2" -- exrheader
    same_report "$(basename "$1")" norm_oiio "$1" "$2" -- oiiotool --info -v -a
    check "oiiotool reads every part and pixel of $(basename "$2")" \
        oiiotool -a "$2" -o "$T/reread.exr"
}

# 1. decreasingY scanline files, every lossless compression
for c in none zip zips piz rle; do
    src="$T/dec $c.exr"
    oiiotool $NOISE 320x240 4 -d half --compression "$c" \
        --attrib:type=string openexr:lineOrder decreasingY -o "$src" || fail "make $src"
    stamp "$src" "$T/dec $c out.exr" && compare_exr "$src" "$T/dec $c out.exr"
    check "exrmaketiled reads the decreasingY $c copy" \
        exrmaketiled "$T/dec $c out.exr" "$T/tiled.exr"
done

# 2. tiled, tiled with mipmaps, tiled decreasingY
oiiotool $NOISE 300x200 3 -d half --tile 64 64 -o "$T/tiled.exr" || fail "make tiled"
stamp "$T/tiled.exr" "$T/tiled out.exr" && compare_exr "$T/tiled.exr" "$T/tiled out.exr"
exrmaketiled -m "$T/dec zip.exr" "$T/mip.exr" >/dev/null || fail "make mipmap"
stamp "$T/mip.exr" "$T/mip out.exr" && compare_exr "$T/mip.exr" "$T/mip out.exr"
oiiotool $NOISE 300x200 3 -d float --tile 32 32 \
    --attrib:type=string openexr:lineOrder decreasingY -o "$T/tdec.exr" || fail "make tdec"
stamp "$T/tdec.exr" "$T/tdec out.exr" && compare_exr "$T/tdec.exr" "$T/tdec out.exr"

# 3. custom attributes of several types
oiiotool $NOISE 320x240 3 -d half --attrib:type=float celmark:float 1.5 \
    --attrib:type=int celmark:int 42 --attrib:type=string "celmark:note" "plate 7 ünïcode" \
    --attrib:type=matrix celmark:m "1,0,0,0,0,1,0,0,0,0,1,0,0,0,0,1" \
    --attrib:type=timecode smpte:TimeCode "01:02:03:04" -o "$T/attrs.exr" || fail "make attrs"
stamp "$T/attrs.exr" "$T/attrs out.exr" && compare_exr "$T/attrs.exr" "$T/attrs out.exr"

# 4. multi-part (two decreasingY parts and an increasing one) and
#    multi-view (parts named by view)
oiiotool "$T/dec zip.exr" "$T/dec piz.exr" --siappend -a \
    --attrib:type=string openexr:lineOrder decreasingY -o "$T/multipart.exr" ||
    fail "make multipart"
stamp "$T/multipart.exr" "$T/multipart out.exr" &&
    compare_exr "$T/multipart.exr" "$T/multipart out.exr"
oiiotool $NOISE 320x240 3 -d half --attrib:type=string view left \
    $NOISE 320x240 3 -d half --attrib:type=string view right --siappend \
    --attrib:type=string multiView "left,right" -o "$T/views.exr" || fail "make views"
stamp "$T/views.exr" "$T/views out.exr" && compare_exr "$T/views.exr" "$T/views out.exr"

# 5. ripmaps: verify reads them; a copy is refused, naming the reason
exrmaketiled -r "$T/dec none.exr" "$T/rip.exr" >/dev/null || fail "make ripmap"
CHECKS=$((CHECKS + 1))
"$CELMARK" verify -k "$KEY" "$T/rip.exr" >"$T/v.out" 2>"$T/v.err"
code=$? # 0 marked, 1 no mark: either way it was read
[ "$code" -le 1 ] || fail "verify cannot read a ripmap EXR: $(cat "$T/v.err")"
stamp_refused "stamp of a ripmap EXR" "$T/rip.exr" "$T/rip out.exr" ripmap

finish
