/* celmark_mkclip OUT [key=value ...]
 * Writes a synthetic cel clip (tests/gen/clip.c) for shell tests and
 * benchmarks. Keys: size=WxH fps=N[/D] frames=N shot=SEC seed=N codec=NAME
 * pix_fmt=NAME opts=K=V:K=V format=NAME audio=1 timecode=HH:MM:SS:FF */
#include "clip.h"

#include <libavutil/log.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s OUT [size=WxH fps=N/D frames=N shot=SEC seed=N codec=NAME "
                        "pix_fmt=NAME opts=K=V:K=V format=NAME audio=1 timecode=TC grain=SIGMA live=1]\n",
                argv[0]);
        return 2;
    }
    av_log_set_level(AV_LOG_ERROR);
    clip_params p;
    clip_params_default(&p);
    for (int i = 2; i < argc; i++) {
        char *eq = strchr(argv[i], '=');
        if (!eq) {
            fprintf(stderr, "mkclip: '%s' is not key=value\n", argv[i]);
            return 2;
        }
        *eq = '\0';
        const char *k = argv[i], *v = eq + 1;
        if (!strcmp(k, "size"))
            sscanf(v, "%dx%d", &p.width, &p.height);
        else if (!strcmp(k, "fps")) {
            p.fps_den = 1;
            sscanf(v, "%d/%d", &p.fps_num, &p.fps_den);
        } else if (!strcmp(k, "frames"))
            p.frames = atoi(v);
        else if (!strcmp(k, "shot"))
            p.shot_sec = atof(v);
        else if (!strcmp(k, "seed"))
            p.seed = (uint32_t)strtoul(v, NULL, 0);
        else if (!strcmp(k, "codec"))
            p.codec = v;
        else if (!strcmp(k, "pix_fmt"))
            p.pix_fmt = v;
        else if (!strcmp(k, "opts"))
            p.options = v;
        else if (!strcmp(k, "format"))
            p.format = v;
        else if (!strcmp(k, "audio"))
            p.audio = atoi(v);
        else if (!strcmp(k, "timecode"))
            p.timecode = v;
        else if (!strcmp(k, "grain"))
            p.grain = atof(v);
        else if (!strcmp(k, "live"))
            p.live = atoi(v);
        else {
            fprintf(stderr, "mkclip: unknown key '%s'\n", k);
            return 2;
        }
    }
    return clip_write(argv[1], &p) ? 1 : 0;
}
