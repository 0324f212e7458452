/* A progress line on stderr (frames, fps, ETA), shown only on a terminal. */
#include "cli.h"

#include <time.h>
#include <unistd.h>

/* Redraw at most this often: a terminal line per frame would cost more
 * than the frames at small sizes. */
#define REDRAW_SEC 0.25

void cli_progress_init(cli_progress *p, const char *label, int quiet)
{
    p->label = label;
    p->enabled = !quiet && isatty(STDERR_FILENO);
    p->start = cli_now_sec();
    p->last = 0;
    p->drawn = 0;
}

void cli_progress_update(void *opaque, int64_t done, int64_t total)
{
    cli_progress *p = opaque;
    if (!p->enabled)
        return;
    double t = cli_now_sec();
    if (p->drawn && t - p->last < REDRAW_SEC && done != total)
        return;
    p->last = t;
    p->drawn = 1;
    double el = t - p->start, fps = el > 0 ? done / el : 0;
    if (total > 0 && done <= total) {
        enum { WIDTH = 24 };
        int fill = (int)(WIDTH * done / total);
        char bar[WIDTH + 1];
        for (int i = 0; i < WIDTH; i++)
            bar[i] = i < fill ? '#' : '.';
        bar[WIDTH] = '\0';
        double eta = fps > 0 ? (total - done) / fps : 0;
        fprintf(stderr, "\r%s [%s] %lld/%lld frames, %.1f fps, ETA %d:%02d ", p->label, bar,
                (long long)done, (long long)total, fps, (int)eta / 60, (int)eta % 60);
    } else {
        fprintf(stderr, "\r%s %lld frames, %.1f fps ", p->label, (long long)done, fps);
    }
    fflush(stderr);
}

void cli_progress_end(cli_progress *p)
{
    if (p->enabled && p->drawn) {
        fputs("\r\033[K", stderr); /* clear the line */
        fflush(stderr);
    }
    p->drawn = 0;
}
