/*
 * What a stamped video copy carries over besides its pictures
 * (formats/video_meta.c): chapters, programs, muxer settings that keep the
 * source's tags, HDR metadata and codec settings the encoder must be told,
 * and the list of what cannot be kept. Library-internal, not installed.
 */
#ifndef CELMARK_FORMATS_VIDEO_META_H
#define CELMARK_FORMATS_VIDEO_META_H

#include "celmark/video.h"
#include "internal.h"

#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <stdio.h>
#include <libavutil/mastering_display_metadata.h>

/* Add "WHAT not kept: WHY" to info's list (info may be NULL). */
CM__HIDDEN void cm__video_not_kept(cm_video_stamp_info *info, const char *what, const char *why_fmt,
                                   ...) __attribute__((format(printf, 3, 4)));

/* A MOV/MP4 timecode track (a data stream tagged tmcd). */
CM__HIDDEN int cm__video_is_tmcd(const AVStream *s);

/* Timecode tracks of ic into of: returns 1 when of (MOV) takes them as
 * streams; else the first one's start goes to the video stream's
 * "timecode" tag (the muxer writes a track from it) and what that loses is
 * announced. *ntmcd = timecode tracks in ic. */
CM__HIDDEN int cm__video_timecode_tracks(const AVFormatContext *ic, int vi,
                                         const AVOutputFormat *of, int *ntmcd,
                                         cm_video_stamp_info *info);

/* Whether of can hold a copy of stream s. */
CM__HIDDEN int cm__video_container_holds(const AVOutputFormat *of, const AVStream *s);

/* Announce input stream i, s, which of cannot hold. */
CM__HIDDEN void cm__video_dropped(cm_video_stamp_info *info, unsigned i, const AVStream *s,
                                  const AVOutputFormat *of);

/* Fix a copied stream's parameters so of writes them as the source had
 * them (a MOV text entry's duplicated "btrt" box). */
CM__HIDDEN void cm__video_fix_copied(const AVOutputFormat *of, AVCodecParameters *par);

/* A MOV/MP4 chapter track (a text track the demuxer turned into ic's
 * chapters): not copied as a stream, the muxer writes it anew from them. */
CM__HIDDEN int cm__video_is_chapter_track(const AVFormatContext *ic, const AVStream *s);

/* Copy ic's chapters (times, titles and other tags) into oc, or announce
 * them in info when oc's container has no chapters. */
CM__HIDDEN int cm__video_copy_chapters(const AVFormatContext *ic, AVFormatContext *oc,
                                       cm_video_stamp_info *info);

/* Copy ic's programs (ids, service name and provider tags, their streams
 * through map: input stream -> output stream or -1) into oc; what a TS
 * source had that libav does not expose is listed in info. */
CM__HIDDEN int cm__video_copy_programs(const AVFormatContext *ic, AVFormatContext *oc,
                                       const int *map, cm_video_stamp_info *info);

/* Whether of's muxer draws random identifiers (MXF UMIDs, Matroska
 * segment UIDs) unless it runs bit-exact. */
CM__HIDDEN int cm__video_mux_bitexact(const AVOutputFormat *of);

/* Muxer options that keep what the source had: MOV "mdta" keys
 * (use_metadata_tags), MPEG-TS PMT PID. Set into *opts. */
CM__HIDDEN void cm__video_mux_options(const AVFormatContext *ic, const AVFormatContext *oc,
                                      AVDictionary **opts);

/* HDR10 metadata in the source's video stream itself: its first decoded
 * frame's (the SEI of an HEVC/H.264 stream), read with a second decoder
 * (the container's is stream side data, copied as such). Each found one
 * is copied into *md / *cl and its flag set. */
typedef struct cm__hdr_meta {
    int has_md, has_cl;
    AVMasteringDisplayMetadata md;
    AVContentLightMetadata cl;
} cm__hdr_meta;
CM__HIDDEN void cm__video_hdr_meta(const char *path, const AVFormatContext *ic, int vi,
                                   const AVCodecContext *dec, cm__hdr_meta *out);

/* x265's settings for h ("hdr10=1:master-display=...:max-cll=..."), or ""
 * when h has none. */
CM__HIDDEN void cm__video_x265_hdr(const cm__hdr_meta *h, char *buf, size_t size);

/* FFV1 coder settings read from the source's extradata (version 2 and up):
 * slices, slice CRCs, range coder. found = 0 when none could be read. */
typedef struct cm__ffv1_settings {
    int found;
    int version, micro_version;
    int coder;                     /* 0 Golomb-Rice, 1 range coder default table, 2 custom table */
    int slices;                    /* horizontal x vertical slices */
    int slicecrc;                  /* per-slice CRC (error correction) */
    int context;                   /* the first plane's quantisation table (the encoder's
                                      "context": 0 small, 1 large), -1 = unknown */
    uint8_t state_transition[256]; /* coder 2's state table */
} cm__ffv1_settings;
CM__HIDDEN void cm__video_ffv1_settings(const AVCodecParameters *par, cm__ffv1_settings *out);

/* The context model from an FFV1 (version 3+) key frame packet: sets
 * out->context, or leaves it -1 (out from cm__video_ffv1_settings). */
CM__HIDDEN void cm__ffv1_packet_context(const uint8_t *data, size_t size, cm__ffv1_settings *out);

/* The context model of an FFV1 (version 3+) stream, from the slice header
 * of its first packet (a key frame), read with a second demuxer: sets
 * out->context, or leaves it -1. */
CM__HIDDEN void cm__video_ffv1_context(const char *path, const AVFormatContext *ic, int vi,
                                       cm__ffv1_settings *out);

/* 1 when every packet of stream vi lies on a grid of frame (1/fps) counted
 * from the first packet's pts (*pts0, in the stream's time base); and
 * *gop = packets from the first key frame to the second (0: one key
 * frame, or unknown). Read with a second
 * demuxer, at most max_packets packets (more: 0). */
CM__HIDDEN int cm__video_on_grid(const char *path, const AVFormatContext *ic, int vi,
                                 AVRational frame, int64_t max_packets, int64_t *pts0, int *gop);

/* Where stream s of ic ends (its time base) when the container says so
 * apart from the packets (Matroska's DURATION tag), else AV_NOPTS_VALUE:
 * the last packet's duration is cut to it. */
CM__HIDDEN int64_t cm__video_stream_end(const AVFormatContext *ic, const AVStream *s);

/* MXF: put the source's package UMIDs (material package, file package)
 * back into the written copy (tmp, open for writing as wr), where libav's
 * MXF muxer wrote bit-exact zero ones. Returns 0, or -1 on an I/O error
 * (errno); what cannot be put back is announced in info. */
CM__HIDDEN int cm__video_mxf_umids(const AVFormatContext *ic, const AVFormatContext *oc,
                                   const char *tmp, FILE *wr, cm_video_stamp_info *info);

/* Before frame f goes to the encoder: drop the source encoder's own
 * settings SEI (x264/x265), and announce once each (bits in *announced)
 * the frame side data the encoder cannot write. Returns 0 or an AVERROR. */
CM__HIDDEN int cm__video_frame_side_data(AVFrame *f, const char *encoder, const AVStream *is,
                                         unsigned *announced, cm_video_stamp_info *info);

#endif
