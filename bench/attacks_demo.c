/*
 * attacks_demo OUTDIR
 *
 * Renders one 1920x1080 synthetic cel frame (tests/gen), applies every attack
 * in atk_list and writes each result as OUTDIR/<name>.png, printing the name,
 * output size and time per attack. Exits 1 if any attack fails, so it doubles
 * as a smoke test; look at the PNGs to check the attacks by eye.
 */
#include "attacks.h"
#include "cel.h"

#include <libavutil/log.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

/* Seed passed to every attack (offsets, noise, sheet layout). */
#define DEMO_SEED 7u

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s OUTDIR\n", argv[0]);
        return 2;
    }
    const char *dir = argv[1];
    if (mkdir(dir, 0777) != 0 && errno != EEXIST) {
        fprintf(stderr, "attacks_demo: %s: %s\n", dir, strerror(errno));
        return 1;
    }
    /* libx264 and swscale log banners at info level; keep errors only. */
    av_log_set_level(AV_LOG_ERROR);

    cm_ctx *ctx = NULL;
    cm_image *frame = NULL;
    cel_params p;
    cel_params_default(&p);
    int ret = cm_ctx_new(&ctx);
    if (!ret)
        ret = cel_generate(&frame, &p);
    if (ret) {
        fprintf(stderr, "attacks_demo: cannot render the frame: %s\n",
                cm_strerror(ret));
        cm_ctx_free(&ctx);
        return 1;
    }
    printf("input: %dx%d seed %u\n", frame->width, frame->height, p.seed);

    int failures = 0;
    double total = 0.0;
    for (int i = 0; i < atk_count(); i++) {
        const atk_def *a = &atk_list[i];
        cm_image *out = NULL;
        double t0 = now_ms();
        ret = a->fn(frame, &out, DEMO_SEED);
        double ms = now_ms() - t0;
        total += ms;
        if (ret) {
            printf("%-14s FAILED: %s\n", a->name, cm_strerror(ret));
            failures++;
            continue;
        }
        char path[4096];
        snprintf(path, sizeof path, "%s/%s.png", dir, a->name);
        ret = cm_image_write(ctx, out, path, CM_WRITE_FORCE);
        if (ret) {
            printf("%-14s %5dx%-5d %8.1f ms  WRITE FAILED: %s\n", a->name,
                   out->width, out->height, ms,
                   *cm_ctx_last_error(ctx) ? cm_ctx_last_error(ctx)
                                           : cm_strerror(ret));
            failures++;
        } else {
            printf("%-14s %5dx%-5d %8.1f ms\n", a->name, out->width,
                   out->height, ms);
        }
        cm_image_free(&out);
    }
    printf("total: %.1f ms, %d attack(s), %d failure(s)\n", total, atk_count(),
           failures);

    cm_image_free(&frame);
    cm_ctx_free(&ctx);
    return failures ? 1 : 0;
}
