# Video through the command: stamp keeps every other stream, the timecode,
# the frame count, alpha and held frames; verify finds the id per segment;
# a cut of two recipients' copies shows as two segments; bad input fails
# cleanly with nothing left behind. Needs ffmpeg/ffprobe (installed with the
# libav development packages by scripts/install-deps).
. "$(dirname "$0")/common.shlib"
: "${CELMARK_MKCLIP:?}"
command -v ffprobe >/dev/null || { echo "SKIP: no ffprobe"; exit 77; }

A=00000000000000aa
B=00000000000000bb
"$CELMARK" keygen "$T/k.key" >/dev/null || exit 1
"$CELMARK" keygen "$T/other.key" >/dev/null || exit 1

count_frames() { ffprobe -v error -count_frames -select_streams v:0 -show_entries stream=nb_read_frames -of csv=p=0 "$1"; }
stream_list() { ffprobe -v error -show_entries stream=codec_type,codec_tag_string,pix_fmt,r_frame_rate,field_order,color_range,color_space,color_primaries,color_transfer -of csv=p=0 "$1"; }
tc_of() { ffprobe -v error -show_entries stream_tags=timecode -of csv=p=0 "$1" | grep -m1 .; }
alpha_md5() { ffmpeg -v error -i "$1" -map 0:v -vf alphaextract -f framemd5 - | grep -v '^#' | cut -d, -f6; }
audio_md5() { ffmpeg -v error -i "$1" -map 0:a -c copy -f md5 -; }

# H.264 MP4 with audio and a start timecode
"$CELMARK_MKCLIP" "$T/in.mp4" frames=48 audio=1 timecode=01:00:00:00 opts=crf=18 || exit 1
expect 0 '' -- "$CELMARK" stamp -k "$T/k.key" --id $A "$T/in.mp4" "$T/a.mp4"
check "reports the frames" grep -q '^frames: 48$' "$T/out"
check "matched the source's crf" grep -q '^quality: crf=18 (the source' "$T/out"
check "same frame count" [ "$(count_frames "$T/a.mp4")" = 48 ]
check "same streams, rate, colour tags" [ "$(stream_list "$T/in.mp4")" = "$(stream_list "$T/a.mp4")" ]
check "timecode kept" [ "$(tc_of "$T/a.mp4")" = 01:00:00:00 ]
check "audio copied bit-exact" [ "$(audio_md5 "$T/in.mp4")" = "$(audio_md5 "$T/a.mp4")" ]
expect 0 '' -- "$CELMARK" verify -k "$T/k.key" "$T/a.mp4"
check "verify names the id" grep -q "^issue_id: $A" "$T/out"
check "verify says video" grep -q '^type: video$' "$T/out"
check "one recipient's copy is not mixed" grep -q '^mixed: no$' "$T/out"
check "one segment from the timecode" grep -q "^segment: 01:00:00:00-01:00:02:00 frames 0-47 issue_id=$A" "$T/out"
expect 1 '' -- "$CELMARK" verify -k "$T/k.key" "$T/in.mp4"
expect 1 '' -- "$CELMARK" verify -k "$T/other.key" "$T/a.mp4"
expect 3 "already exists" -- "$CELMARK" stamp -k "$T/k.key" --id $A "$T/in.mp4" "$T/a.mp4"
# the copy's first window is checked as a still is: a tiny clip with
# little room for the mark gets the still's warning (and is still written)
"$CELMARK_MKCLIP" "$T/tiny.mp4" size=96x64 frames=6 opts=crf=30 || exit 1
expect 0 'the mark (is weak|cannot be found again).*little of this clip can carry it' -- \
    "$CELMARK" stamp -k "$T/k.key" --id $A "$T/tiny.mp4" "$T/tiny_a.mp4"
check "the tiny copy is written" [ -s "$T/tiny_a.mp4" ]
# a PQ (HDR10) clip: stamped, its transfer kept and said, and a warning that
# the colour budget is SDR's (an SDR clip gets none: the stamps above and
# below expect an empty stderr)
ffmpeg -v error -f lavfi -i testsrc2=size=320x240:rate=24 -t 1 -c:v libx264 -crf 20 \
    -pix_fmt yuv420p10le -color_trc smpte2084 -color_primaries bt2020 -colorspace bt2020nc \
    "$T/pq.mp4" || exit 1
expect 0 'HDR \(PQ\) video: the colour budget judges the mark as an SDR display' -- \
    "$CELMARK" stamp -k "$T/k.key" --id $A "$T/pq.mp4" "$T/pq_a.mp4"
check "PQ: the transfer said" grep -q '^transfer: smpte2084$' "$T/out"
check "PQ: the transfer kept" [ "$(stream_list "$T/pq.mp4")" = "$(stream_list "$T/pq_a.mp4")" ]
# frames are marked by several workers at once: one worker or five, the
# same frames reach the encoder in the same order, the same bytes
expect 0 '' -- "$CELMARK" stamp -j 1 -k "$T/k.key" --id $A "$T/in.mp4" "$T/a1.mp4"
expect 0 '' -- "$CELMARK" stamp -j 5 -k "$T/k.key" --id $A "$T/in.mp4" "$T/a5.mp4"
check "-j 1 and -j 5 write the same bytes" cmp -s "$T/a1.mp4" "$T/a5.mp4"
check "and the default's" cmp -s "$T/a.mp4" "$T/a5.mp4"
expect 2 "-j must be a whole number" -- "$CELMARK" stamp -j 0 -k "$T/k.key" --id $A "$T/in.mp4" "$T/a0.mp4"
check "-j 0: nothing written" [ ! -e "$T/a0.mp4" ]

# a cut mixing two recipients' copies: two segments with their timecodes
expect 0 '' -- "$CELMARK" stamp -k "$T/k.key" --id $B "$T/in.mp4" "$T/b.mp4"
printf "file '%s'\nfile '%s'\n" "$T/a.mp4" "$T/b.mp4" >"$T/list.txt"
ffmpeg -v error -f concat -safe 0 -i "$T/list.txt" -c copy "$T/cut.mp4" || exit 1
expect 0 '' -- "$CELMARK" verify --json -k "$T/k.key" "$T/cut.mp4"
check "reported as mixed" grep -q '"mixed":true' "$T/out"
check "two segments" [ "$(grep -o '"issue_id":"00000000000000[ab][ab]"' "$T/out" | sort -u | wc -l)" = 2 ]
check "first segment is A" grep -q "\"segments\":\[{\"start\":0[.0-9]*,\"end\":2[.0-9]*,\"start_tc\":\"[0-9:]*\",\"end_tc\":\"[0-9:]*\",\"first_frame\":0,\"frames\":48,\"marked\":true,\"issue_id\":\"$A\"" "$T/out"
check "second segment is B" grep -q "\"first_frame\":48,\"frames\":48,\"marked\":true,\"issue_id\":\"$B\"" "$T/out"
check "a full read says where it did not stop" grep -q '"stopped_at_frame":null' "$T/out"
# triage: --fast stops once the claim is decisive, and says where: inside
# the first window it is probed at its 1st and 2nd frame (the untouched
# geometry alone), then at its 4th, 8th, 16th, 32nd
expect 0 '' -- "$CELMARK" verify --fast -k "$T/k.key" "$T/cut.mp4"
check "fast: stopped inside the first window" grep -qEx 'stopped: at frame (1|2|4|8|16|32), the claim decisive \(--fast\)' "$T/out"
check "fast: the first copy named" grep -qx "issue_id: $A" "$T/out"
expect 0 '' -- "$CELMARK" verify --fast --json -k "$T/k.key" "$T/cut.mp4"
check "fast: JSON stopped_at_frame" grep -qE '"frames":(1|2|4|8|16|32),"stopped_at_frame":(1|2|4|8|16|32)[,}]' "$T/out"
check "fast: one segment, A's" sh -c "grep -q '\"segments\":\[{[^]]*\"issue_id\":\"$A\"[^]]*}\]' '$T/out'"
# a rescaled copy (720p, to 3/4): the quick probes (the untouched
# geometry) cannot register it, the whole search at the 4th frame does
"$CELMARK_MKCLIP" "$T/hd.mp4" size=1280x720 frames=8 opts=crf=18 || exit 1
expect 0 '' -- "$CELMARK" stamp -q -k "$T/k.key" --id $A "$T/hd.mp4" "$T/hdA.mp4"
ffmpeg -v error -i "$T/hdA.mp4" -vf scale=iw*3/4:-2 -c:v libx264 -crf 18 "$T/a75.mp4" || exit 1
expect 0 '' -- "$CELMARK" verify --fast -k "$T/k.key" "$T/a75.mp4"
check "fast, rescaled: stopped by the whole search" grep -qEx 'stopped: at frame (4|8|16|32), the claim decisive \(--fast\)' "$T/out"
check "fast, rescaled: A named" grep -qx "issue_id: $A" "$T/out"

# ProRes 4444 with alpha in MOV: alpha bit-exact, PCM audio bit-exact
"$CELMARK_MKCLIP" "$T/in.mov" codec=prores_ks pix_fmt=yuva444p10le opts=profile=4 frames=12 audio=1 timecode=10:00:00:00 || exit 1
expect 0 '' -- "$CELMARK" stamp -k "$T/k.key" --id $A "$T/in.mov" "$T/a.mov"
check "prores profile kept" grep -q '^quality: profile 4444' "$T/out"
check "alpha bit-exact" [ "$(alpha_md5 "$T/in.mov")" = "$(alpha_md5 "$T/a.mov")" ]
check "pcm audio bit-exact" [ "$(audio_md5 "$T/in.mov")" = "$(audio_md5 "$T/a.mov")" ]
check "mov timecode kept" [ "$(tc_of "$T/a.mov")" = 10:00:00:00 ]
expect 0 '' -- "$CELMARK" info "$T/a.mov"
check "info: container, codec, alpha" sh -c "grep -qx 'format: mov' '$T/out' && grep -qx 'codec: prores' '$T/out' && grep -qx 'alpha: yes' '$T/out'"
check "info: frames, timecode, audio" sh -c "grep -qx 'frames: 12' '$T/out' && grep -qx 'timecode: 10:00:00:00' '$T/out' && grep -q '^stream.1: audio pcm_s16le' '$T/out'"
expect 0 '' -- "$CELMARK" verify -k "$T/k.key" "$T/a.mov"

# FFV1 10-bit 4:2:2 (lossless): held frames stay identical, chroma untouched
"$CELMARK_MKCLIP" "$T/in.mkv" codec=ffv1 pix_fmt=yuv422p10le frames=8 || exit 1
expect 0 '' -- "$CELMARK" stamp -k "$T/k.key" --id $A "$T/in.mkv" "$T/a.mkv"
ffmpeg -v error -i "$T/a.mkv" -f framemd5 - | grep -v '^#' | cut -d, -f6 >"$T/h"
check "held frames identical (on twos)" [ "$(sed -n 1p "$T/h")" = "$(sed -n 2p "$T/h")" ]
check "marked frames differ from the source" [ "$(ffmpeg -v error -i "$T/in.mkv" -f framemd5 - | grep -v '^#' | cut -d, -f6 | sed -n 1p)" != "$(sed -n 1p "$T/h")" ]
cmp_plane() { ffmpeg -v error -i "$1" -vf "extractplanes=$2" -f framemd5 - | grep -v '^#' | cut -d, -f6; }
check "chroma bit-exact" [ "$(cmp_plane "$T/in.mkv" u)" = "$(cmp_plane "$T/a.mkv" u)" ]
expect 0 '' -- "$CELMARK" verify -k "$T/k.key" "$T/a.mkv"

# DNxHR HQ in MXF with PCM audio: profile kept; H.265 in MP4: crf matched
"$CELMARK_MKCLIP" "$T/in.mxf" codec=dnxhd pix_fmt=yuv422p opts=profile=dnxhr_hq size=640x352 frames=6 audio=1 || exit 1
expect 0 '' -- "$CELMARK" stamp -k "$T/k.key" --id $A "$T/in.mxf" "$T/a.mxf"
check "dnxhr profile kept" grep -q '^quality: profile DNXHR HQ' "$T/out"
check "mxf streams kept" [ "$(stream_list "$T/in.mxf")" = "$(stream_list "$T/a.mxf")" ]
check "mxf audio bit-exact" [ "$(audio_md5 "$T/in.mxf")" = "$(audio_md5 "$T/a.mxf")" ]
expect 0 '' -- "$CELMARK" verify -k "$T/k.key" "$T/a.mxf"
"$CELMARK_MKCLIP" "$T/in.hevc.mp4" codec=libx265 opts=crf=22 frames=12 || exit 1
expect 0 '' -- "$CELMARK" stamp -k "$T/k.key" --id $A "$T/in.hevc.mp4" "$T/a.hevc.mp4"
check "x265 crf matched" grep -q '^quality: crf=22 (the source' "$T/out"
check "hevc frame count" [ "$(count_frames "$T/a.hevc.mp4")" = 12 ]
expect 0 '' -- "$CELMARK" verify -k "$T/k.key" "$T/a.hevc.mp4"

# bad input: clear error, exit 3, nothing left behind
head -c 20000 "$T/in.mp4" >"$T/trunc.mp4"
expect 3 "trunc.mp4" -- "$CELMARK" stamp -k "$T/k.key" --id $A "$T/trunc.mp4" "$T/t.mp4"
check "no output for a truncated mp4" [ ! -e "$T/t.mp4" ]
expect 3 "trunc.mp4" -- "$CELMARK" verify -k "$T/k.key" "$T/trunc.mp4"
# an MKV whose video codec this build does not know
ffmpeg -v error -i "$T/in.mp4" -map 0:v -c copy "$T/avc.mkv" || exit 1
LC_ALL=C sed 's/V_MPEG4\/ISO\/AVC/V_QQQQQ\/ISO\/AVC/' "$T/avc.mkv" >"$T/unknown.mkv"
expect 3 "cannot decode" -- "$CELMARK" stamp -k "$T/k.key" --id $A "$T/unknown.mkv" "$T/u.mkv"
check "no output for an undecodable stream" [ ! -e "$T/u.mkv" ]
expect 3 "cannot decode" -- "$CELMARK" verify -k "$T/k.key" "$T/unknown.mkv"
expect 3 "no nosuch encoder" -- "$CELMARK" stamp -k "$T/k.key" --id $A --codec nosuch "$T/in.mp4" "$T/n.mp4"
check "no output for a missing encoder" [ ! -e "$T/n.mp4" ]
check "no temp files left" sh -c "! ls -A '$T' | grep -q tmp"

finish
