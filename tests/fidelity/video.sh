# Video fidelity: a stamped copy reads in every downstream tool exactly as
# its source did. Each case is made here with ffmpeg (320x240, 12 frames),
# stamped twice with the built command, and what ffprobe/ffmpeg report of
# source and copy is compared line for line: streams, format and container
# tags, chapters, programs, every video frame's timing, aspect, field order,
# colour tags and side data, every other stream's packets (framemd5), and
# the two stamps byte for byte. Whatever celmark cannot keep it must say on
# stderr ("celmark: warning: OUT: WHAT not kept: WHY"); a case lists what it
# expects to be announced, and only those report lines may differ.
# A case whose encoder or tool is missing is skipped with one line.
. "$CELMARK_SRC/tests/cli/common.shlib"
command -v ffmpeg >/dev/null || { echo "SKIP: no ffmpeg"; rm -rf "$T"; exit 77; }
command -v ffprobe >/dev/null || { echo "SKIP: no ffprobe"; rm -rf "$T"; exit 77; }

# paths with spaces and non-ASCII characters
D="$T/fidélité dir"
mkdir -p "$D" || exit 1
ID=0123456789abcdef
"$CELMARK" keygen "$D/k.key" >/dev/null || exit 1
RAN=0
SKIPPED=0
# the second stamp of each case runs on one core: the same bytes whatever
# the number of cores (encoders that cut their work by threads are given
# a fixed number)
PIN="" PINNED=""
if command -v taskset >/dev/null && taskset -c 0 true 2>/dev/null &&
    [ "$(getconf _NPROCESSORS_ONLN 2>/dev/null || echo 1)" -gt 1 ]; then
    PIN="taskset -c 0" PINNED=" (on one core)"
fi

ENCODERS=$(ffmpeg -hide_banner -encoders 2>/dev/null)
have_enc() { printf '%s\n' "$ENCODERS" | grep -q "^ [A-Z.]* $1 "; }

# The allow-list: report lines that may differ between a source and its
# stamped copy (ERE over ffprobe's flat output). Only what re-encoding the
# video necessarily changes:
ALLOW='^format\.(filename|size|bit_rate)='                        # file name, bytes, overall bit rate
ALLOW="$ALLOW|^format\.tags\.(encoder|ENCODER|software)="          # the muxer that wrote the file
ALLOW="$ALLOW|^format\.tags\.(product_version_num|toolkit_version_num|application_platform)=" # (MXF)
ALLOW="$ALLOW|^streams\.stream\.0\.(bit_rate|max_bit_rate)="       # the video's bit rate
ALLOW="$ALLOW|^streams\.stream\.0\.extradata_size="                # codec-private data (SPS/PPS, ProRes none)
ALLOW="$ALLOW|^streams\.stream\.0\.tags\.(encoder|ENCODER)="       # the encoder that wrote the video
ALLOW="$ALLOW|^streams\.stream\.0\.tags\.(BPS|NUMBER_OF_BYTES)="   # Matroska statistics of the video's bytes
# ... and per video frame: where its packet lies and how big it is, and
# the encoder's own picture numbering and picture types (packet data)
FALLOW='\.(pkt_pos|pkt_size|coded_picture_number|pict_type)='

# report FILE: what ffprobe reads of the container, streams, chapters
report() {
    ffprobe -v error -show_streams -show_format -show_chapters -show_programs -of flat "$1" |
        grep -Ev "$ALLOW" | sort
}
# frames FILE: every video frame as ffprobe reads it (timing, aspect,
# field order, colour tags, side data)
frames() {
    ffprobe -v error -select_streams v:0 -show_frames -of flat "$1" | grep -Ev "$FALLOW"
}
# others FILE: every other stream's packets (not the first video stream,
# not attachments, which carry no packets)
others() {
    n=$(ffprobe -v error -show_entries stream=codec_type -of csv=p=0 "$1" |
        grep -vc '^attachment')
    if [ "$n" -le 1 ]; then
        echo "no other stream"
        return 0
    fi
    ffmpeg -v error -i "$1" -map 0 -map -0:v:0 -map -0:t? -c copy -f framemd5 -
}
# differ WHAT A B EXTRA: report lines of A and B differ outside the
# allow-list and EXTRA (an ERE for what the case announces; '' = none)
differ() {
    "$1" "$2" >"$D/r.src" 2>&1
    "$1" "$3" >"$D/r.copy" 2>&1
    if [ -n "$4" ]; then
        grep -Ev "$4" "$D/r.src" >"$D/r.src2"
        grep -Ev "$4" "$D/r.copy" >"$D/r.copy2"
        mv "$D/r.src2" "$D/r.src"
        mv "$D/r.copy2" "$D/r.copy"
    fi
    if ! cmp -s "$D/r.src" "$D/r.copy"; then
        diff "$D/r.src" "$D/r.copy" | head -20 | sed 's/^/  /'
        return 1
    fi
    return 0
}
# plays SRC COPY: every frame of every stream of COPY decodes without a
# warning (but those its source gets too: a chapter track ffprobe cannot
# decode)
plays() {
    ffprobe -v warning -show_frames "$1" 2>&1 >/dev/null | sed 's/ @ 0x[0-9a-f]*//' >"$D/w.src"
    ffprobe -v warning -show_frames "$2" 2>&1 >/dev/null | sed 's/ @ 0x[0-9a-f]*//' >"$D/w.copy"
    grep -vxF -f "$D/w.src" "$D/w.copy" >"$D/w.new"
    [ -s "$D/w.new" ] || return 0
    head -5 "$D/w.new" | sed 's/^/  /'
    return 1
}

# The stamp checks its copy's first window and says when the mark is weak
# there: true of these tiny half-second clips; and it warns on a PQ copy
# that its colour budget is SDR's. Both are advice on the mark, and
# tests/cli/video.sh's business; these cases look at what the copy keeps
# of its source.
# drop_mark_advice FILE: FILE (a stamp's stderr) without those warnings.
drop_mark_advice() {
    sed -i -E -e '/^celmark: warning: .*: the mark (is weak|cannot be found again)/d' \
        -e '/^celmark: warning: .*: HDR \(PQ\) video: the colour budget/d' "$1"
}

# fidelity NAME EXT ANNOUNCED DIFFS -- ffmpeg output options...
# Makes NAME.EXT with ffmpeg (inputs and options after --), stamps it twice
# and compares. ANNOUNCED: ERE of the "WHAT not kept" warnings the stamp
# must print ('' = stderr empty); DIFFS: ERE of report lines that may
# differ because of them.
fidelity() {
    name=$1 ext=$2 announced=$3 diffs=$4
    shift 5
    src="$D/$name src.$ext"
    a="$D/$name copy é.$ext"
    b="$D/$name copy 2.$ext"
    if ! ffmpeg -v error -y "$@" "$src" 2>"$D/gen.err"; then
        echo "SKIP: $name: ffmpeg cannot make it here: $(head -1 "$D/gen.err")"
        SKIPPED=$((SKIPPED + 1))
        return 0
    fi
    RAN=$((RAN + 1))
    CHECKS=$((CHECKS + 1))
    "$CELMARK" stamp -k "$D/k.key" --id $ID "$src" "$a" >"$D/out" 2>"$D/err"
    code=$?
    drop_mark_advice "$D/err"
    bad=0
    if [ -z "$announced" ]; then
        grep -q . "$D/err" && bad=1
    else
        grep -Ev "^celmark: warning: .*: .*($announced).* not kept: " "$D/err" | grep -q . && bad=1
        for what in $(printf '%s' "$announced" | tr '|' ' '); do
            grep -q "^celmark: warning: .*$name copy é.$ext: .*$what.* not kept: " "$D/err" ||
                bad=1
        done
    fi
    if [ "$code" -ne 0 ] || [ "$bad" -ne 0 ]; then
        echo "FAIL: $name: stamp exited $code or said something unexpected (announce: /$announced/):"
        sed 's/^/  stderr: /' "$D/err"
        FAILS=$((FAILS + 1))
        return 0
    fi
    check "$name: streams, format, chapters, programs and tags kept" \
        differ report "$src" "$a" "$diffs"
    check "$name: every video frame's timing, aspect, fields, colour, side data kept" \
        differ frames "$src" "$a" ""
    check "$name: every other stream's packets kept" differ others "$src" "$a" ""
    check "$name: the copy plays without a warning" plays "$src" "$a"
    $PIN "$CELMARK" stamp -k "$D/k.key" --id $ID "$src" "$b" >/dev/null 2>&1
    check "$name: stamping twice gives the same bytes$PINNED" cmp -s "$a" "$b"
    rm -f "$a" "$b"
}

# sources: 12 frames of 320x240 at 24 fps, a tone, a chapter list
V="-f lavfi -i testsrc2=size=320x240:rate=24:duration=0.5"
A="-f lavfi -i sine=frequency=440:duration=0.5"
cat >"$D/meta.txt" <<'EOF'
;FFMETADATA1
title=Fidelity
[CHAPTER]
TIMEBASE=1/1000
START=0
END=250
title=Opening
[CHAPTER]
TIMEBASE=1/1000
START=250
END=500
title=Second part
EOF
M="$D/meta.txt"

# 1. chapters (with their titles) in MP4, MOV and MKV
for ext in mp4 mov mkv; do
    fidelity "chapters-$ext" $ext '' '' -- $V $A -i "$M" -map 0:v -map 1:a -map_metadata 2 \
        -map_chapters 2 -c:v libx264 -c:a aac
done

# 2. sample aspect ratio and field order: ProRes in MOV (square, 4:3,
# 8:9 interlaced SD), FFV1 in MKV
if have_enc prores_ks; then
    fidelity sar-prores-1x1 mov '' '' -- $V -vf setsar=1 -c:v prores_ks -profile:v 2
    fidelity sar-prores-4x3 mov '' '' -- $V -vf setsar=4/3 -c:v prores_ks -profile:v 2
    fidelity sar-prores-8x9-tff mov '' '' -- $V -vf setsar=8/9,setfield=tff -c:v prores_ks \
        -profile:v 3 -flags +ildct+ilme -field_order tt
else
    echo "SKIP: sar-prores: no prores_ks encoder"
fi
fidelity sar-ffv1 mkv '' '' -- $V -vf setsar=4/3 -c:v ffv1 -level 3 -pix_fmt yuv422p10le

# 3. HDR10: mastering display and content light level SEI in HEVC
if have_enc libx265; then
    for ext in mp4 mkv; do
        fidelity "hdr10-$ext" $ext '' '' -- $V -c:v libx265 -pix_fmt yuv420p10le \
            -color_primaries bt2020 -color_trc smpte2084 -colorspace bt2020nc \
            -x265-params "log-level=error:hdr10=1:master-display=G(13250,34500)B(7500,3000)R(34000,16000)WP(15635,16450)L(10000000,1):max-cll=1000,400"
    done
else
    echo "SKIP: hdr10: no libx265 encoder"
fi

# 4. every container, twice the same bytes (and all the above kept)
fidelity mxf-dnxhr mxf '' '' -- -f lavfi -i testsrc2=size=640x352:rate=24:duration=0.25 $A \
    -map 0:v -map 1:a -c:v dnxhd -profile:v dnxhr_hq -pix_fmt yuv422p -c:a pcm_s16le -ar 48000
fidelity mxf-mpeg2 mxf '' '' -- $V $A -map 0:v -map 1:a -c:v mpeg2video -pix_fmt yuv422p \
    -timecode 10:00:00:00 -c:a pcm_s16le -ar 48000
# a TS source's transport stream id, network id and service type: libav's
# reader does not pass them on, so the stamp announces them
fidelity ts-h264 ts 'transport.stream.id' '' -- $V $A -map 0:v -map 1:a -c:v libx264 -c:a aac \
    -metadata service_name="Studio feed" -metadata service_provider="Celmark tests"
fidelity avi-mjpeg avi '' '' -- $V $A -map 0:v -map 1:a -c:v mjpeg -q:v 3 -c:a pcm_s16le
fidelity avi-mpeg4 avi '' '' -- $V -c:v mpeg4 -q:v 3

# 5. H.264 VUI timing: 24 fps stays time_scale 48, packet durations kept
fidelity h264-timing mp4 '' '' -- $V -c:v libx264
# NTSC rate (30000/1001) on the one-frame grid; variable frame rate (a
# held frame, then a jump) keeps the source's time base; interlaced H.264
fidelity ntsc-mp4 mp4 '' '' -- -f lavfi -i testsrc2=size=320x240:rate=30000/1001:duration=0.4 \
    -c:v libx264
fidelity vfr-mkv mkv '' '' -- $V -vf "setpts='N/(24*TB)+gte(N,6)*0.03/TB'" -fps_mode passthrough \
    -c:v libx264
fidelity interlaced-ts ts 'transport.stream.id' '' -- -f lavfi -i testsrc2=size=320x240:rate=25:duration=0.5 \
    -vf setfield=tff -c:v libx264 -flags +ildct+ilme -x264-params tff=1
es_timing() {
    ffmpeg -v error -i "$1" -map 0:v -c copy -f h264 - |
        ffprobe -v error -show_entries stream=r_frame_rate,avg_frame_rate,time_base:packet=duration -of flat -
}
src="$D/h264-timing src.mp4"
if [ -f "$src" ]; then
    "$CELMARK" stamp -k "$D/k.key" --id $ID "$src" "$D/es copy.mp4" >/dev/null 2>&1
    check "h264-timing: the elementary stream's timing (VUI) kept" \
        differ es_timing "$src" "$D/es copy.mp4" ""
fi

# 6. what used to go without a word: MKV attachments (a font for ASS
# subtitles), MOV mdta keys, MPEG-TS service names, FFV1 level 3 settings,
# MOV creation time
cat >"$D/subs.ass" <<'EOF'
[Script Info]
ScriptType: v4.00+
PlayResX: 320
PlayResY: 240

[V4+ Styles]
Format: Name, Fontname, Fontsize, PrimaryColour, SecondaryColour, OutlineColour, BackColour, Bold, Italic, Underline, StrikeOut, ScaleX, ScaleY, Spacing, Angle, BorderStyle, Outline, Shadow, Alignment, MarginL, MarginR, MarginV, Encoding
Style: Default,Celmark Sans,20,&H00FFFFFF,&H000000FF,&H00000000,&H00000000,0,0,0,0,100,100,0,0,1,1,0,2,10,10,10,1

[Events]
Format: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, Text
Dialogue: 0,0:00:00.00,0:00:00.40,Default,,0,0,0,,Hello
EOF
printf 'not really a font, but bytes to keep\n' >"$D/celmark sans.ttf"
fidelity attachments-mkv mkv '' '' -- $V -i "$D/subs.ass" -map 0:v -map 1:s -c:v libx264 \
    -c:s ass -attach "$D/celmark sans.ttf" -metadata:s:t mimetype=application/x-truetype-font
fidelity mdta-mov mov '' '' -- $V -c:v libx264 -movflags use_metadata_tags \
    -metadata com.apple.quicktime.artist="Ånimator" -metadata com.studio.shot=sq010_sh0040 \
    -metadata title="Fidelity"
fidelity ffv1-level3 mkv '' '' -- $V -c:v ffv1 -level 3 -slices 4 -slicecrc 1 -context 1 \
    -coder range_tab -g 1
fidelity ffv1-gop5 mkv '' '' -- $V -c:v ffv1 -level 3 -g 5
# the decoder's account of the configuration record (version, coder,
# slices, slice CRCs, its CRC) and of every frame (key frame, slices);
# the context model is not in it (tests/unit/test_video_meta.c reads it)
ffv1_header() {
    ffmpeg -v debug -debug pict -i "$1" -map 0:v -f null - 2>&1 | grep -o 'ver:.*' | sort |
        uniq -c
}
src="$D/ffv1-level3 src.mkv"
if [ -f "$src" ]; then
    "$CELMARK" stamp -k "$D/k.key" --id $ID "$src" "$D/ffv1 copy.mkv" >/dev/null 2>&1
    check "ffv1-level3: the decoder reports its configuration" \
        test -n "$(ffv1_header "$src")"
    check "ffv1-level3: version, coder, slice CRCs and slices kept" \
        differ ffv1_header "$src" "$D/ffv1 copy.mkv" ""
fi
fidelity creation-time-mov mov '' '' -- $V -c:v libx264 \
    -metadata creation_time=2024-05-06T07:08:09.123456Z

# more: MOV timecode with a reel name, 8 mono PCM tracks, MP4 subtitles
fidelity reel-mov mov '' '' -- $V -c:v libx264 -timecode 01:00:00:00 \
    -metadata:s:v reel_name=A001C003
eight="" maps=""
for k in 1 2 3 4 5 6 7 8; do
    eight="$eight -f lavfi -i sine=frequency=$((200 * k)):duration=0.5"
    maps="$maps -map $k:a"
done
fidelity audio8-mov mov '' '' -- $V $eight -map 0:v $maps -c:v libx264 -c:a pcm_s24le
# per-frame side data the encoder writes again: a studio's own user data
# SEI (not the source encoder's settings string), stereo 3D frame packing
if ffmpeg -hide_banner -bsfs 2>/dev/null | grep -qx h264_metadata; then
    fidelity sei-h264 mp4 '' '' -- $V -c:v libx264 \
        -bsf:v h264_metadata=sei_user_data=086f3693-b7b3-4f2c-9653-21492feee5b8+celmark-studio
else
    echo "SKIP: sei-h264: no h264_metadata bitstream filter"
fi
fidelity stereo-h264 mp4 '' '' -- $V -c:v libx264 -x264-params frame-packing=3
fidelity subs-mp4 mp4 '' '' -- $V -i "$D/subs.ass" -map 0:v -map 1:s -c:v libx264 -c:s mov_text

fidelity tc2-mov mov '' '' -- -i "$D/reel-mov src.mov" -i "$D/reel-mov src.mov" -map 0:v \
    -map 0:d -map 1:d -c copy -metadata:s:d:1 reel_name=B002

# announced, not lost: into a container that cannot hold it, the stamp
# says what it lost, one line each, and still writes a playable copy
# announces NAME SRC OUT_EXT WHAT
announces() {
    name=$1 src=$2 out="$D/$1 copy.$3" what=$4
    if [ ! -f "$src" ]; then
        echo "SKIP: $name: no source (its case was skipped)"
        return 0
    fi
    CHECKS=$((CHECKS + 1))
    "$CELMARK" stamp -k "$D/k.key" --id $ID "$src" "$out" >"$D/out" 2>"$D/err"
    code=$?
    drop_mark_advice "$D/err"
    line="^celmark: warning: .*$name copy\.$3: .*($what).* not kept: "
    if [ "$code" -ne 0 ] || ! grep -Eq "$line" "$D/err" ||
        grep -Ev "$line" "$D/err" | grep -q .; then
        echo "FAIL: $name: stamp exited $code or did not announce only /$what/:"
        sed 's/^/  stderr: /' "$D/err"
        FAILS=$((FAILS + 1))
        return 0
    fi
    check "$name: the copy plays without a warning" plays "$src" "$out"
    rm -f "$out"
}
announces chapters-to-ts "$D/chapters-mkv src.mkv" ts 'chapters'
announces chapters-to-avi "$D/chapters-mp4 src.mp4" avi 'chapters|presentation times'
announces attachment-to-mp4 "$D/attachments-mkv src.mkv" mp4 \
    'stream [12] \((subtitle ass|attachment ttf celmark sans\.ttf)\)'
announces timecodes-to-mp4 "$D/tc2-mov src.mov" mp4 "(a second timecode track|reel name)"


# into another container: the same frames at the same rate, their times
# from the first (to the millisecond: Matroska counts in milliseconds; an
# MPEG-TS starts where its muxer's delay puts it); AVI and MXF cannot hold
# the presentation times of H.264's reordered frames, and say so
# (an MPEG-TS lists its streams once more under its program: sort -u)
frame_count() {
    ffprobe -v error -select_streams v:0 -count_frames \
        -show_entries stream=r_frame_rate,nb_read_frames -of csv=p=0 "$1" | grep . | sort -u
}
frame_list() {
    frame_count "$1"
    ffprobe -v error -select_streams v:0 -show_entries frame=pts_time -of csv=p=0 "$1" |
        awk 'NF == 0 { next } !n++ { t0 = $1 } { printf "%.3f\n", $1 - t0 }'
}
src="$D/h264-timing src.mp4"
for ext in mov mkv ts mxf avi; do
    [ -f "$src" ] || break
    out="$D/to-$ext copy.$ext"
    case $ext in
    mxf | avi)
        expect 0 "^celmark: warning: .*to-$ext copy\.$ext: presentation times of reordered frames not kept: " \
            -- "$CELMARK" stamp -k "$D/k.key" --id $ID "$src" "$out" &&
            drop_mark_advice "$T/err" &&
            check "mp4 to $ext: only that announced" one_line_err &&
            check "mp4 to $ext: as many frames at the same rate" differ frame_count "$src" "$out" ""
        ;;
    *)
        expect_stamped "to-$ext copy\\.$ext" -- "$CELMARK" stamp -k "$D/k.key" --id $ID "$src" "$out" &&
            check "mp4 to $ext: the same frames at the same rate and times" \
                differ frame_list "$src" "$out" ""
        ;;
    esac
    check "mp4 to $ext: the copy plays without a warning" plays "$src" "$out"
    rm -f "$out"
done

# every stamp above went through a temporary file: none is left behind
check "no temporary file left" test -z "$(find "$D" -name '.*.tmp-*' -print)"

finish_all() {
    if [ "$RAN" -eq 0 ]; then
        echo "SKIP: every case ($SKIPPED) skipped"
        rm -rf "$T"
        exit 77
    fi
    echo "$RAN cases, $SKIPPED skipped"
    finish
}
finish_all
