/* The profile table (see profile.h). */
#include "profile.h"

#include <string.h>

/*
 * All profiles share one tile geometry so the detector needs no profile:
 * T = 32 waxels of s = 12 px (a 384 px tile). Low frequency (12 px waxels)
 * is what survives H.264 at CRF 28-35; 384 px still repeats twice inside a
 * 50 % crop of 1080p and is 96 px after a 25 % downscale.
 *
 * flat: the mark's amplitude inside fills. Rounding to 8-bit adds to it
 * (a fill's RMS is about sqrt(flat^2 + 1/12) when flat is near 1), so the
 * floors sit below the fill RMS targets: default <= 1.0, subtle <= 0.5.
 * gain/max: amplitude per unit of activity and its cap, off fills (ink
 * lines and fill edges are capped lower, see mask.c). psnr_floor: the
 * frame-wide cap; textured frames reach it, cel frames stay well above.
 * de_max: the per-pixel colour budget (pixels/colour.h): a CIEDE2000 of 2.3
 * is the usual just-noticeable difference side by side; default stays
 * under it on every pixel, subtle well under, robust trades some
 * visibility on the worst pixels for strength.
 */
static const cm__profile profiles[] = {
    [CM_PROFILE_SUBTLE] = {"subtle", 32, 12, 0.38f, 0.15f, 2.0f, 48.0, 1.5f},
    [CM_PROFILE_DEFAULT] = {"default", 32, 12, 0.85f, 0.35f, 5.0f, 43.0, 2.0f},
    [CM_PROFILE_ROBUST] = {"robust", 32, 12, 1.4f, 0.35f, 6.0f, 42.5, 4.0f},
};

const cm__profile *cm__profile_get(cm_profile p)
{
    if ((int)p < 0 || (size_t)p >= sizeof(profiles) / sizeof(profiles[0]))
        return NULL;
    return &profiles[p];
}

const char *cm_profile_name(cm_profile p)
{
    const cm__profile *pf = cm__profile_get(p);
    return pf ? pf->name : "unknown";
}

int cm_profile_from_name(const char *name)
{
    for (size_t i = 0; name && i < sizeof(profiles) / sizeof(profiles[0]); i++)
        if (strcmp(profiles[i].name, name) == 0)
            return (int)i;
    return -1;
}
