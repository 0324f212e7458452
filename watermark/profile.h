/*
 * Strength profiles: the tile geometry and mask amplitudes behind
 * `--profile subtle|default|robust`. Each row's robustness is measured by
 * bench/robustness; change a number here only with a new table.
 */
#ifndef CELMARK_PROFILE_H
#define CELMARK_PROFILE_H

#include "celmark/stamp.h"
#include "internal.h"

typedef struct cm__profile {
    const char *name;
    int T;               /* waxels per tile side */
    int s;               /* pixels per waxel at the stamped size */
    float flat;          /* mark RMS in flat fills, code values */
    float gain;          /* extra amplitude per unit of local activity */
    float max;           /* amplitude cap, code values */
    double psnr_floor_db;/* the whole frame's luma PSNR never goes below this */
    float de_max;        /* no pixel of a still differs from its original by more
                            than this, CIEDE2000 (times the strength) */
} cm__profile;

/* NULL if p is not a known profile. */
CM__HIDDEN const cm__profile *cm__profile_get(cm_profile p);

#endif
