/*
 * bench/scan [--dir DIR] [--files N] [--jobs J] [--celmark PATH]
 *
 * A generated "server dump" of N (default 2,000) mixed files, scanned by the
 * built `celmark scan`; every result is checked against what was planted:
 *
 *   30 %  marked stills of 4 recipients: 1080p PNG, 1080p JPEG q85
 *         (libjpeg-turbo), and JPEG q75 of a 1080p frame rescaled to 70 %
 *    1 %  marked clips (H.264 MP4, 2 s 640x360)
 *    6 %  thumbnails of marked frames (320x180 JPEG q80): too small to
 *         carry the mark; a claim on one must name the right id
 *   24 %  unmarked images: cel frames (1080p), photo-like texture, noise,
 *         frames marked under another key (640x360; PNG and JPEG)
 *   10 %  corrupt media: PNGs cut short, MP4s cut short (no index)
 *   29 %  not media: text, JSON, random bytes
 *
 * Prints: attributed / marked, claims on unmarked files, corrupt files
 * listed with an error, and the command's own throughput line; then the
 * yardstick of issue 18: the same files decoded by libav alone (probe,
 * every frame decoded) with as many threads as scan has workers, and the
 * ratio of scan's wall time to it.
 */
#include "benchutil.h"
#include "cel.h"
#include "clip.h"
#include "unmarked.h"

#include "celmark/celmark.h"

#include <jansson.h>
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libswscale/swscale.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <turbojpeg.h>
#include <unistd.h>

#define RECIPIENTS 4
#define BASE_ID UINT64_C(0x5ca1ab1e00000000)

typedef enum truth { T_MARKED, T_THUMB, T_UNMARKED, T_CORRUPT, T_OTHER } truth;

typedef struct planted {
    char path[512];
    truth t;
    uint64_t id;
} planted;

static int write_jpeg(const cm_image *img, const char *path, int q)
{
    tjhandle h = tjInitCompress();
    unsigned char *buf = NULL;
    unsigned long len = 0;
    int pf = img->channels == 1 ? TJPF_GRAY : (img->channels == 4 ? TJPF_RGBA : TJPF_RGB);
    int ret = -1;
    if (h && tjCompress2(h, img->data, img->width, (int)img->stride, img->height, pf, &buf, &len,
                         img->channels == 1 ? TJSAMP_GRAY : TJSAMP_420, q, TJFLAG_ACCURATEDCT) == 0) {
        FILE *f = fopen(path, "wb");
        if (f && fwrite(buf, 1, len, f) == len)
            ret = 0;
        if (f)
            fclose(f);
    }
    tjFree(buf);
    if (h)
        tjDestroy(h);
    return ret;
}

/* RGB image scaled by k (bicubic). */
static cm_image *rescale(const cm_image *in, double k)
{
    int w = (int)(in->width * k), h = (int)(in->height * k);
    cm_image *out = NULL;
    if (cm_image_new(&out, w, h, 3, 0, 8))
        return NULL;
    struct SwsContext *s = sws_getContext(in->width, in->height, AV_PIX_FMT_RGB24, w, h,
                                          AV_PIX_FMT_RGB24, SWS_BICUBIC, NULL, NULL, NULL);
    const uint8_t *src[1] = {in->data};
    int sls[1] = {(int)in->stride};
    uint8_t *dst[1] = {out->data};
    int dls[1] = {(int)out->stride};
    sws_scale(s, src, sls, 0, in->height, dst, dls);
    sws_freeContext(s);
    return out;
}

static cm_image *cel(uint32_t seed, int w, int h)
{
    cel_params p;
    cel_params_default(&p);
    p.width = w;
    p.height = h;
    p.seed = seed;
    cm_image *img = NULL;
    return cel_generate(&img, &p) ? NULL : img;
}

static void truncate_file(const char *path, double frac)
{
    struct stat st;
    if (stat(path, &st) == 0)
        truncate(path, (off_t)(st.st_size * frac));
}

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

static void write_random(const char *path, uint64_t *rng, size_t n)
{
    FILE *f = fopen(path, "wb");
    for (size_t i = 0; f && i < n; i++)
        fputc((int)(bench_splitmix64(rng) & 255), f);
    if (f)
        fclose(f);
}

/* Every video frame of one file decoded, one decoder thread (scan's
 * workers take a file each); files libav cannot open are skipped. */
static int decode_file(const char *path)
{
    AVFormatContext *fc = NULL;
    AVCodecContext *cc = NULL;
    AVPacket *pkt = av_packet_alloc();
    AVFrame *fr = av_frame_alloc();
    const AVCodec *dec = NULL;
    int frames = -1, si = -1;
    if (!pkt || !fr || avformat_open_input(&fc, path, NULL, NULL) < 0)
        goto done;
    frames = 0;
    if (avformat_find_stream_info(fc, NULL) < 0 ||
        (si = av_find_best_stream(fc, AVMEDIA_TYPE_VIDEO, -1, -1, &dec, 0)) < 0 ||
        !(cc = avcodec_alloc_context3(dec)) ||
        avcodec_parameters_to_context(cc, fc->streams[si]->codecpar) < 0)
        goto done;
    cc->thread_count = 1;
    if (avcodec_open2(cc, dec, NULL) < 0)
        goto done;
    for (int eof = 0; !eof;) {
        if (av_read_frame(fc, pkt) < 0) {
            eof = 1;
            avcodec_send_packet(cc, NULL);
        } else {
            int mine = pkt->stream_index == si;
            if (mine)
                avcodec_send_packet(cc, pkt);
            av_packet_unref(pkt);
            if (!mine)
                continue;
        }
        while (avcodec_receive_frame(cc, fr) == 0) {
            frames++;
            av_frame_unref(fr);
        }
    }
done:
    avcodec_free_context(&cc);
    avformat_close_input(&fc);
    av_packet_free(&pkt);
    av_frame_free(&fr);
    return frames;
}

typedef struct decode_pass {
    const char *const *paths;
    int n, next;
    pthread_mutex_t mu;
    int opened, frames;
} decode_pass;

static void *decode_worker(void *arg)
{
    decode_pass *d = arg;
    for (;;) {
        pthread_mutex_lock(&d->mu);
        int i = d->next++;
        pthread_mutex_unlock(&d->mu);
        if (i >= d->n)
            return NULL;
        int f = decode_file(d->paths[i]);
        pthread_mutex_lock(&d->mu);
        d->opened += f >= 0;
        d->frames += f > 0 ? f : 0;
        pthread_mutex_unlock(&d->mu);
    }
}

/* The yardstick: paths decoded by libav alone on threads threads, each
 * taking the next file; wall seconds. */
static double decode_alone(const char *const *paths, int n, int threads, int *opened,
                           int *frames)
{
    decode_pass dp = {paths, n, 0, PTHREAD_MUTEX_INITIALIZER, 0, 0};
    pthread_t th[64];
    int nth = threads < 1 ? 1 : (threads > 64 ? 64 : threads);
    double t0 = bench_now_ms();
    for (int t = 0; t < nth; t++)
        pthread_create(&th[t], NULL, decode_worker, &dp);
    for (int t = 0; t < nth; t++)
        pthread_join(th[t], NULL);
    *opened = dp.opened;
    *frames = dp.frames;
    return (bench_now_ms() - t0) / 1000;
}

/* `celmark scan` of the given files alone (output thrown away): wall
 * seconds, < 0 when it could not run. */
static double scan_files(const char *celmark, const char *keyfile, const char *jopt,
                         const char *const *paths, int n)
{
    size_t cap = strlen(celmark) + strlen(keyfile) + 128;
    for (int i = 0; i < n; i++)
        cap += strlen(paths[i]) + 3;
    char *cmd = malloc(cap);
    if (!cmd)
        return -1;
    size_t len = (size_t)snprintf(cmd, cap, "'%s' scan -q -k '%s' %s", celmark, keyfile, jopt);
    for (int i = 0; i < n; i++)
        len += (size_t)snprintf(cmd + len, cap - len, " '%s'", paths[i]);
    snprintf(cmd + len, cap - len, " > /dev/null 2>&1");
    double t0 = bench_now_ms();
    int rc = system(cmd);
    free(cmd);
    return rc == -1 ? -1 : (bench_now_ms() - t0) / 1000;
}

/* The kinds of file in the dump, by the name bench gives them. */
static const struct {
    const char *name, *prefix, *ext;
} kinds[] = {
    {"marked PNG 1080p", "f", ".png"},    {"marked JPEG (1080p, 70 %)", "f", ".jpg"},
    {"marked clips", "c", ".mp4"},        {"thumbnails 320x180", "t", ".jpg"},
    {"unmarked images", "u", ""},         {"corrupt media", "x", ""},
    {"not media", "n", ""},
};
#define NKINDS (sizeof(kinds) / sizeof(kinds[0]))

static int kind_of(const char *path)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    const char *dot = strrchr(base, '.');
    for (size_t k = 0; k < NKINDS; k++)
        if (base[0] == kinds[k].prefix[0] && (!kinds[k].ext[0] || (dot && !strcmp(dot, kinds[k].ext))))
            return (int)k;
    return -1;
}

int main(int argc, char **argv)
{
    const char *dir = "bench-scan", *celmark = NULL;
    int nfiles = 2000, jobs = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--dir") && i + 1 < argc)
            dir = argv[++i];
        else if (!strcmp(argv[i], "--files") && i + 1 < argc)
            nfiles = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--jobs") && i + 1 < argc)
            jobs = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--celmark") && i + 1 < argc)
            celmark = argv[++i];
        else {
            fprintf(stderr, "usage: %s [--dir DIR] [--files N] [--jobs J] [--celmark PATH]\n",
                    argv[0]);
            return 2;
        }
    }
    char self[512], cmd_path[600];
    ssize_t sl = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (!celmark && sl > 0) { /* build/bench/scan -> build/celmark */
        self[sl] = '\0';
        char *slash = strrchr(self, '/');
        if (slash)
            *slash = '\0';
        snprintf(cmd_path, sizeof(cmd_path), "%s/../celmark", self);
        celmark = cmd_path;
    }
    char cmd[2048];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s' && mkdir -p '%s/dump/day1' '%s/dump/day2/vendor' '%s/dump/docs'",
             dir, dir, dir, dir);
    if (system(cmd))
        return 1;
    av_log_set_level(AV_LOG_ERROR);

    cm_key *key = NULL, *other = NULL;
    if (bench_key(&key, 0) || bench_key(&other, 1))
        return 1;
    cm_stamper *st[RECIPIENTS];
    for (int r = 0; r < RECIPIENTS; r++)
        if (cm_stamper_new(NULL, key, BASE_ID + (uint64_t)r, NULL, &st[r]))
            return 1;
    planted *pl = calloc((size_t)nfiles, sizeof(planted));
    uint64_t rng = 12345;
    um_source us = {777, other, NULL};
    double t0 = bench_now_ms();
    static const char *const folders[] = {"day1", "day2/vendor", "docs"};
    for (int i = 0; i < nfiles; i++) {
        planted *p = &pl[i];
        int slot = i % 100; /* the mix, per hundred files */
        const char *folder = folders[i % 3];
        cm_image *img = NULL;
        if (slot < 30) { /* marked still */
            int r = i % RECIPIENTS;
            p->t = T_MARKED;
            p->id = BASE_ID + (uint64_t)r;
            int form = slot % 3;
            img = cel((uint32_t)i, 1920, 1080);
            cm_stamper_image(st[r], img);
            snprintf(p->path, sizeof(p->path), "%s/dump/%s/f%05d.%s", dir, folder, i,
                     form == 0 ? "png" : "jpg");
            if (form == 0) {
                cm_image_write(NULL, img, p->path, CM_WRITE_FORCE);
            } else if (form == 1) {
                write_jpeg(img, p->path, 85);
            } else {
                cm_image *small = rescale(img, 0.7);
                write_jpeg(small, p->path, 75);
                cm_image_free(&small);
            }
        } else if (slot == 30) { /* marked clip */
            int r = i % RECIPIENTS;
            char src[600];
            snprintf(src, sizeof(src), "%s/clip-src.mp4", dir);
            clip_params cp;
            clip_params_default(&cp);
            cp.seed = (uint32_t)i;
            cp.options = "crf=20";
            clip_write(src, &cp);
            p->t = T_MARKED;
            p->id = BASE_ID + (uint64_t)r;
            snprintf(p->path, sizeof(p->path), "%s/dump/%s/c%05d.mp4", dir, folder, i);
            if (cm_video_stamp(NULL, st[r], src, p->path, NULL, CM_WRITE_FORCE, NULL))
                return 1;
        } else if (slot < 37) { /* thumbnail of a marked frame */
            int r = i % RECIPIENTS;
            p->t = T_THUMB;
            p->id = BASE_ID + (uint64_t)r;
            img = cel((uint32_t)i, 1920, 1080);
            cm_stamper_image(st[r], img);
            cm_image *small = rescale(img, 1.0 / 6);
            snprintf(p->path, sizeof(p->path), "%s/dump/%s/t%05d.jpg", dir, folder, i);
            write_jpeg(small, p->path, 80);
            cm_image_free(&small);
        } else if (slot < 61) { /* unmarked images */
            p->t = T_UNMARKED;
            um_kind k = (um_kind)(slot % 4 == 0 ? UM_OTHER_KEY : (slot % 4 == 1 ? UM_PHOTO
                                                               : (slot % 4 == 2 ? UM_NOISE : UM_CEL)));
            if (k == UM_CEL) {
                um_generate_image(&us, k, i, 1920, 1080, &img);
            } else if (k == UM_OTHER_KEY) {
                um_generate_image(&us, k, i, 640, 360, &img);
            } else { /* a luma plane: a grey image */
                cm_plane pl0 = {0};
                if (!um_generate(&us, k, i, 640, 360, &pl0) && !cm_image_new(&img, 640, 360, 1, 0, 8))
                    for (int y = 0; y < 360; y++)
                        for (int x = 0; x < 640; x++) {
                            float v = pl0.data[y * pl0.stride + x];
                            img->data[(ptrdiff_t)y * img->stride + x] =
                                (uint8_t)(v < 0 ? 0 : (v > 255 ? 255 : v + 0.5f));
                        }
                cm_plane_free(&pl0);
            }
            int jpg = slot % 2;
            snprintf(p->path, sizeof(p->path), "%s/dump/%s/u%05d.%s", dir, folder, i,
                     jpg ? "jpg" : "png");
            if (jpg && img && (img->channels == 3 || img->channels == 1) && img->bit_depth == 8)
                write_jpeg(img, p->path, 85);
            else if (img) {
                snprintf(p->path, sizeof(p->path), "%s/dump/%s/u%05d.png", dir, folder, i);
                cm_image_write(NULL, img, p->path, CM_WRITE_FORCE);
            }
        } else if (slot < 71) { /* corrupt media */
            p->t = T_CORRUPT;
            if (slot == 70) {
                clip_params cp;
                clip_params_default(&cp);
                cp.frames = 12;
                snprintf(p->path, sizeof(p->path), "%s/dump/%s/x%05d.mp4", dir, folder, i);
                clip_write(p->path, &cp);
                truncate_file(p->path, 0.6);
            } else {
                img = cel((uint32_t)i, 1280, 720);
                cm_stamper_image(st[i % RECIPIENTS], img);
                snprintf(p->path, sizeof(p->path), "%s/dump/%s/x%05d.png", dir, folder, i);
                cm_image_write(NULL, img, p->path, CM_WRITE_FORCE);
                truncate_file(p->path, 0.3 + 0.05 * (slot % 10));
            }
        } else { /* not media */
            p->t = T_OTHER;
            snprintf(p->path, sizeof(p->path), "%s/dump/%s/n%05d.%s", dir, folder, i,
                     slot % 3 == 0 ? "txt" : (slot % 3 == 1 ? "json" : "bin"));
            if (slot % 3 == 0)
                write_text(p->path, "Retake notes: fix the line weight on cut 12.\n");
            else if (slot % 3 == 1)
                write_text(p->path, "{\"batch\": 7, \"frames\": [1001, 1002]}\n");
            else
                write_random(p->path, &rng, 4096);
        }
        cm_image_free(&img);
    }
    printf("dump: %d files generated in %.1f s under %s/dump\n", nfiles,
           (bench_now_ms() - t0) / 1000, dir);

    char jsonl[600];
    snprintf(jsonl, sizeof(jsonl), "%s/scan.jsonl", dir);
    char jopt[32] = "";
    if (jobs > 0)
        snprintf(jopt, sizeof(jopt), "-j %d", jobs);
    snprintf(cmd, sizeof(cmd), "'%s' scan -k '%s/bench.key' %s --jsonl '%s' '%s/dump' > '%s/summary.txt'",
             celmark, dir, jopt, jsonl, dir, dir);
    /* the bench key as a key file the command can load */
    char keyfile[600];
    snprintf(keyfile, sizeof(keyfile), "%s/bench.key", dir);
    if (cm_key_save(NULL, key, keyfile)) {
        fprintf(stderr, "cannot write %s\n", keyfile);
        return 1;
    }
    fflush(stdout);
    double ts = bench_now_ms();
    int rc = system(cmd);
    double scan_s = (bench_now_ms() - ts) / 1000;
    printf("scan: exit %d in %.1f s (%s)\n", WEXITSTATUS(rc), scan_s, jopt[0] ? jopt : "all cores");

    /* check every line against what was planted */
    int n_marked = 0, ok_marked = 0, n_unmarked = 0, claims_unmarked = 0, n_corrupt = 0,
        err_corrupt = 0, n_other = 0, other_reported = 0, wrong_id = 0, lines = 0, n_thumb = 0,
        thumb_found = 0;
    FILE *f = fopen(jsonl, "r");
    char *line = NULL;
    size_t cap = 0;
    json_t **byline = calloc((size_t)nfiles, sizeof(json_t *));
    while (f && getline(&line, &cap, f) > 0) {
        json_t *o = json_loads(line, 0, NULL);
        const char *path = json_string_value(json_object_get(o, "path"));
        lines++;
        for (int i = 0; path && i < nfiles; i++)
            if (!strcmp(pl[i].path, path)) {
                byline[i] = o;
                o = NULL;
                break;
            }
        json_decref(o);
    }
    if (f)
        fclose(f);
    free(line);
    for (int i = 0; i < nfiles; i++) {
        json_t *o = byline[i];
        int marked = o && json_is_true(json_object_get(o, "marked"));
        const char *id = o ? json_string_value(json_object_get(o, "issue_id")) : NULL;
        char want[17];
        snprintf(want, sizeof(want), "%016llx", (unsigned long long)pl[i].id);
        switch (pl[i].t) {
        case T_MARKED:
            n_marked++;
            if (marked && id && !strcmp(id, want))
                ok_marked++;
            else if (marked)
                wrong_id++;
            else
                printf("  missed: %s\n", pl[i].path);
            break;
        case T_THUMB:
            n_thumb++;
            if (marked && id && !strcmp(id, want))
                thumb_found++;
            else if (marked)
                wrong_id++;
            break;
        case T_UNMARKED:
            n_unmarked++;
            claims_unmarked += marked;
            break;
        case T_CORRUPT:
            n_corrupt++;
            err_corrupt += o && json_object_get(o, "error") != NULL;
            if (!(o && json_object_get(o, "error")))
                printf("  corrupt file without an error: %s\n", pl[i].path);
            break;
        case T_OTHER:
            n_other++;
            other_reported += o != NULL;
            break;
        }
        json_decref(o);
    }
    free(byline);
    printf("\nmarked files attributed to the right id: %d/%d (wrong id: %d)\n", ok_marked,
           n_marked, wrong_id);
    printf("thumbnails of marked frames attributed: %d/%d (too small to carry the mark; "
           "a wrong id would count above)\n", thumb_found, n_thumb);
    printf("unmarked files claimed: %d/%d\n", claims_unmarked, n_unmarked);
    printf("corrupt files listed with an error: %d/%d\n", err_corrupt, n_corrupt);
    printf("non-media files reported as media: %d/%d (skipped by content)\n", other_reported,
           n_other);
    printf("json lines: %d\n\ncommand summary:\n", lines);
    fflush(stdout);
    snprintf(cmd, sizeof(cmd), "cat '%s/summary.txt'", dir);
    if (system(cmd))
        return 1;

    /* the yardstick: the same files decoded by libav alone, same cores;
     * then both sides per kind of file, to show where the time goes */
    int threads = jobs > 0 ? jobs : (int)sysconf(_SC_NPROCESSORS_ONLN);
    const char **paths = calloc((size_t)nfiles, sizeof(char *));
    if (!paths)
        return 1;
    for (int i = 0; i < nfiles; i++)
        paths[i] = pl[i].path;
    int opened, frames;
    double dec_s = decode_alone(paths, nfiles, threads, &opened, &frames);
    printf("\nscan bound by decoding (issue 18: scan wall <= 1.3x libav alone, same cores)\n");
    printf("  libav alone: %d files opened, %d frames decoded on %d threads in %.2f s\n", opened,
           frames, threads, dec_s);
    printf("  celmark scan: %.2f s, ratio %.2fx (target <= 1.30) %s\n", scan_s,
           dec_s > 0 ? scan_s / dec_s : 0, dec_s > 0 && scan_s / dec_s <= 1.3 ? "PASS" : "MISS");
    printf("\n  %-26s %6s %12s %12s %7s\n", "by kind (each alone)", "files", "libav s",
           "scan s", "ratio");
    for (size_t k = 0; k < NKINDS; k++) {
        int n = 0;
        for (int i = 0; i < nfiles; i++)
            if (kind_of(pl[i].path) == (int)k)
                paths[n++] = pl[i].path;
        if (!n)
            continue;
        double d = decode_alone(paths, n, threads, &opened, &frames);
        double c = scan_files(celmark, keyfile, jopt, paths, n);
        printf("  %-26s %6d %12.2f %12.2f %6.1fx\n", kinds[k].name, n, d, c, d > 0 ? c / d : 0);
    }
    free(paths);
    for (int r = 0; r < RECIPIENTS; r++)
        cm_stamper_free(&st[r]);
    cm_key_free(&key);
    cm_key_free(&other);
    free(pl);
    return ok_marked == n_marked && !wrong_id && !claims_unmarked && err_corrupt == n_corrupt
               ? 0
               : 1;
}
