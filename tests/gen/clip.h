/*
 * Synthetic cel-style clips for tests and benchmarks, encoded with libav.
 *
 * A clip is a run of shots (one generated cel frame each, shot_sec long);
 * within a shot the camera pans slowly over the frame and each drawing is
 * held for two frames ("on twos"), as animation is. Optional: a PCM audio
 * stream (a tone), a start timecode, an alpha channel (pix_fmt with alpha),
 * grain on every drawing (compositing grain, scanned paper), or a
 * live-action-like clip (textured shots, a new picture every frame, faster
 * camera motion, sensor noise).
 */
#ifndef CELMARK_GEN_CLIP_H
#define CELMARK_GEN_CLIP_H

#include <stdint.h>

typedef struct clip_params {
    int width, height;    /* default 640x360 */
    int fps_num, fps_den; /* default 24/1 */
    int frames;           /* default 48 */
    double shot_sec;      /* default 1.0 */
    uint32_t seed;        /* default 1 */
    const char *codec;    /* encoder name; default "libx264" */
    const char *pix_fmt;  /* default: "yuv420p" */
    const char *options;  /* encoder options "k=v:k=v" (e.g. "crf=18"); may be NULL */
    const char *format;   /* container name; NULL = from the file name */
    int audio;            /* 1: add a 48 kHz stereo PCM tone stream */
    const char *timecode; /* start timecode "HH:MM:SS:FF" or NULL */
    double grain;         /* noise added to luma, standard deviation in code
                             values (chroma gets half); default 0 */
    int live;             /* 1: live-action-like (see above; grain 0 = 4) */
} clip_params;

void clip_params_default(clip_params *p);

/* Write the clip; 0 on success, else a message on stderr and nonzero. */
int clip_write(const char *path, const clip_params *p);

#endif
