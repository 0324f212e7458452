/*
 * Fuzz target: the video reader the verifier uses (formats/video_read.c:
 * cm_media_probe, cm__video_open, cm__video_next): demuxers of every
 * container in VIDEO_DEMUXERS, their decoders and the luma extraction.
 */
#include "fuzz_util.h"

#include "celmark/video.h"
#include "formats/video.h"

/* Frames decoded per input: enough to pass keyframes, reorder buffers
 * and a size change; more only costs time. */
#define FUZZ_MAX_FRAMES 32

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    fuzz_file f;
    fuzz_file_make(&f, data, size, 0600);
    cm_ctx *ctx = NULL;
    if (cm_ctx_new(&ctx))
        abort();
    cm_media_kind kind;
    (void)cm_media_probe(ctx, f.path, &kind);
    cm_limits lim;
    cm_limits_default(&lim);
    lim.max_pixels = FUZZ_MAX_PIXELS / 4;
    lim.max_frames = FUZZ_MAX_FRAMES * 4;
    /* FUZZ_DECODE_SECONDS=0.002 makes the time limit interrupt libav at
     * random points of parsing, which exercises its error paths */
    lim.max_decode_seconds = getenv("FUZZ_DECODE_SECONDS") ? atof(getenv("FUZZ_DECODE_SECONDS")) : 5;
    cm__video_reader *r = NULL;
    if (cm__video_open(ctx, f.path, &lim, 1, 0, &r) == CM_OK) {
        (void)cm__video_fps(r);
        (void)cm__video_frames_hint(r);
        (void)cm__video_timecode(r);
        for (int i = 0; i < FUZZ_MAX_FRAMES; i++) {
            cm_plane *luma = NULL;
            double t;
            int got = cm__video_next(r, &luma, &t);
            if (got <= 0)
                break;
            if (!luma || !luma->data || luma->width <= 0 || luma->height <= 0)
                abort();
            /* touch the first and last sample: a short plane shows in ASan */
            volatile float s = luma->data[0] +
                               luma->data[(size_t)(luma->height - 1) * (size_t)luma->stride +
                                          (size_t)luma->width - 1];
            (void)s;
        }
        cm__video_close(&r);
    } else if (r) {
        abort();
    }
    cm_ctx_free(&ctx);
    fuzz_file_free(&f);
    return 0;
}
