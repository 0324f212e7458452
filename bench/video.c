/*
 * bench/video [--dir DIR] [--seconds S] [--skip-4k]
 *
 * Video robustness, speed and memory (issue figures):
 *   1. a 10 s 1080p24 cel-style clip (tests/gen/clip.c, x264 crf 18, audio)
 *      is stamped; then each attack re-encodes it and cuts the middle 3 s:
 *        h264_720p    libx264 crf 28 at 1280x720
 *        h265_720p    libx265 crf 28 at 1280x720
 *        crop60       60 % of the area (centre-left offset), libx264 crf 28
 *        fps30        24 -> 30 fps (frames repeated by time), libx264 crf 28
 *      and cm_video_verify must name the stamped id with fpr <= 1e-9.
 *   2. speed: stamping (cm_video_stamp) against a plain transcode of the
 *      same clip with the same encoder settings and no mark (both here,
 *      same process, same libav calls); verify speed on one core (decoder
 *      single-threaded) as a multiple of real time.
 *   3. memory: peak RSS of stamping a 4K ProRes 4444 clip, in a child
 *      process (getrusage of the child).
 * Attacks use libav and libswscale only (scaling with bicubic filtering).
 */
#include "benchutil.h"
#include "clip.h"

#include "celmark/celmark.h"

#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/opt.h>
#include <libavutil/pixdesc.h>
#include <libswscale/swscale.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define ISSUE_ID UINT64_C(0x5eed00c0ffee0001)
#define MAX_FPR 1e-9

/* ---- a small libav re-encoder for the attacks and the plain transcode -- */

typedef struct attack {
    const char *name;
    const char *codec; /* encoder */
    int crf;
    int out_w, out_h;  /* 0 = source size (after crop) */
    double crop_area;  /* 1 = none; else this fraction of the area, kept aspect */
    int fps_out;       /* 0 = same as source */
    double t0, t1;     /* keep source times in [t0, t1); t1 <= 0 = all */
} attack;

typedef struct enc_state {
    AVFormatContext *oc;
    AVCodecContext *enc;
    AVStream *st;
    AVPacket *pkt;
} enc_state;

static int drain(enc_state *e)
{
    for (;;) {
        int err = avcodec_receive_packet(e->enc, e->pkt);
        if (err == AVERROR(EAGAIN) || err == AVERROR_EOF)
            return 0;
        if (err < 0)
            return err;
        av_packet_rescale_ts(e->pkt, e->enc->time_base, e->st->time_base);
        e->pkt->stream_index = 0;
        if ((err = av_interleaved_write_frame(e->oc, e->pkt)) < 0)
            return err;
    }
}

/* Decode in's video, apply a (crop, scale, fps, cut), encode to out. */
static int reencode(const char *in, const char *out, const attack *a)
{
    AVFormatContext *ic = NULL;
    AVCodecContext *dec = NULL;
    enc_state e = {0};
    struct SwsContext *sws = NULL;
    AVFrame *f = av_frame_alloc(), *o = av_frame_alloc();
    AVPacket *pkt = av_packet_alloc();
    e.pkt = av_packet_alloc();
    int ret = -1, err;
    const AVCodec *dc = NULL;
    if (avformat_open_input(&ic, in, NULL, NULL) < 0 || avformat_find_stream_info(ic, NULL) < 0)
        goto done;
    int vi = av_find_best_stream(ic, AVMEDIA_TYPE_VIDEO, -1, -1, &dc, 0);
    if (vi < 0)
        goto done;
    AVStream *is = ic->streams[vi];
    dec = avcodec_alloc_context3(dc);
    avcodec_parameters_to_context(dec, is->codecpar);
    dec->pkt_timebase = is->time_base;
    if (avcodec_open2(dec, dc, NULL) < 0)
        goto done;
    int sw = dec->width, sh = dec->height, cx = 0, cy = 0;
    if (a->crop_area < 1) {
        double k = sqrt(a->crop_area);
        int cw = ((int)(sw * k)) & ~1, ch = ((int)(sh * k)) & ~1;
        cx = ((sw - cw) / 3) & ~1; /* off centre, on even pixels */
        cy = ((sh - ch) / 2) & ~1;
        sw = cw;
        sh = ch;
    }
    int ow = a->out_w ? a->out_w : sw, oh = a->out_h ? a->out_h : sh;
    AVRational fr = av_guess_frame_rate(ic, is, NULL);
    AVRational ofr = a->fps_out ? av_make_q(a->fps_out, 1) : fr;
    const AVCodec *ec = avcodec_find_encoder_by_name(a->codec);
    if (!ec || avformat_alloc_output_context2(&e.oc, NULL, NULL, out) < 0)
        goto done;
    e.enc = avcodec_alloc_context3(ec);
    e.enc->width = ow;
    e.enc->height = oh;
    e.enc->pix_fmt = AV_PIX_FMT_YUV420P;
    e.enc->time_base = av_inv_q(ofr);
    e.enc->framerate = ofr;
    e.enc->color_range = AVCOL_RANGE_MPEG;
    e.enc->thread_count = 0; /* as cm_video_stamp sets it */
    if (e.oc->oformat->flags & AVFMT_GLOBALHEADER)
        e.enc->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
    AVDictionary *opts = NULL;
    char crf[16];
    snprintf(crf, sizeof(crf), "%d", a->crf);
    av_dict_set(&opts, "crf", crf, 0);
    if (!strcmp(a->codec, "libx265"))
        av_dict_set(&opts, "x265-params", "log-level=error", 0);
    err = avcodec_open2(e.enc, ec, &opts);
    av_dict_free(&opts);
    if (err < 0)
        goto done;
    e.st = avformat_new_stream(e.oc, NULL);
    avcodec_parameters_from_context(e.st->codecpar, e.enc);
    e.st->time_base = e.enc->time_base;
    if (avio_open(&e.oc->pb, out, AVIO_FLAG_WRITE) < 0 || avformat_write_header(e.oc, NULL) < 0)
        goto done;
    o->format = AV_PIX_FMT_YUV420P;
    o->width = ow;
    o->height = oh;
    if (av_frame_get_buffer(o, 0) < 0)
        goto done;
    int64_t next_out = 0; /* output frame index */
    double t_first = -1;
    int eof = 0;
    while (!eof) {
        err = av_read_frame(ic, pkt);
        if (err < 0) {
            eof = 1;
            avcodec_send_packet(dec, NULL);
        } else if (pkt->stream_index == vi) {
            avcodec_send_packet(dec, pkt);
        }
        av_packet_unref(pkt);
        while (avcodec_receive_frame(dec, f) == 0) {
            double t = f->best_effort_timestamp * av_q2d(is->time_base);
            if (t_first < 0)
                t_first = t;
            t -= t_first;
            if (t < a->t0 || (a->t1 > 0 && t >= a->t1)) {
                av_frame_unref(f);
                continue;
            }
            sws = sws_getCachedContext(sws, sw, sh, f->format, ow, oh, AV_PIX_FMT_YUV420P,
                                       SWS_BICUBIC, NULL, NULL, NULL);
            const AVPixFmtDescriptor *d = av_pix_fmt_desc_get(f->format);
            const uint8_t *src[4];
            for (int p = 0; p < 4 && f->data[p]; p++) {
                int sx = p ? cx >> d->log2_chroma_w : cx, sy = p ? cy >> d->log2_chroma_h : cy;
                src[p] = f->data[p] + (ptrdiff_t)sy * f->linesize[p] + sx;
            }
            av_frame_make_writable(o);
            sws_scale(sws, src, f->linesize, 0, sh, o->data, o->linesize);
            /* emit every output frame whose time falls before the next
             * source frame: repeats frames when the rate goes up */
            double fdur = 1.0 / av_q2d(fr), tout = av_q2d(av_inv_q(ofr));
            while ((next_out * tout) < (t - a->t0) + fdur - 1e-9) {
                o->pts = next_out++;
                if (avcodec_send_frame(e.enc, o) < 0 || drain(&e) < 0)
                    goto done;
            }
            av_frame_unref(f);
        }
    }
    avcodec_send_frame(e.enc, NULL);
    if (drain(&e) < 0 || av_write_trailer(e.oc) < 0)
        goto done;
    ret = 0;
done:
    if (e.oc && e.oc->pb)
        avio_closep(&e.oc->pb);
    avformat_free_context(e.oc);
    avcodec_free_context(&e.enc);
    avcodec_free_context(&dec);
    avformat_close_input(&ic);
    av_frame_free(&f);
    av_frame_free(&o);
    av_packet_free(&pkt);
    av_packet_free(&e.pkt);
    sws_freeContext(sws);
    return ret;
}

/* ---- the bench --------------------------------------------------------- */

static int verify_clip(cm_verifier *v, const char *path, int threads, cm_video_report *rep)
{
    cm_ctx *ctx = NULL;
    cm_ctx_new(&ctx);
    cm_video_verify_params p;
    cm_video_verify_params_default(&p);
    p.threads = threads;
    int ret = cm_video_verify(ctx, v, path, &p, rep);
    if (ret)
        fprintf(stderr, "verify %s: %s\n", path, cm_ctx_last_error(ctx));
    cm_ctx_free(&ctx);
    return ret;
}

static double file_mb(const char *path)
{
    struct stat st;
    return stat(path, &st) ? 0 : st.st_size / 1e6;
}

/* --stamp-only IN OUT: stamp and exit (run in a fresh process so its peak
 * RSS is celmark's alone, not the bench's heap inherited over fork). */
static int stamp_only(const char *in, const char *out)
{
    cm_key *key = NULL;
    cm_ctx *ctx = NULL;
    cm_stamper *st = NULL;
    cm_ctx_new(&ctx);
    int ret = bench_key(&key, 0);
    if (!ret)
        ret = cm_stamper_new(ctx, key, ISSUE_ID, NULL, &st);
    if (!ret)
        ret = cm_video_stamp(ctx, st, in, out, NULL, CM_WRITE_FORCE, NULL);
    if (ret)
        fprintf(stderr, "stamp %s: %s\n", in, cm_ctx_last_error(ctx));
    cm_stamper_free(&st);
    cm_key_free(&key);
    cm_ctx_free(&ctx);
    return ret ? 1 : 0;
}

/* Stamp in -> out in a new process; its peak RSS in MiB (< 0 on failure). */
static double stamp_rss(const char *in, const char *out, double *ms)
{
    double t0 = bench_now_ms();
    pid_t pid = fork();
    if (pid == 0) {
        execl("/proc/self/exe", "video", "--stamp-only", in, out, (char *)NULL);
        _exit(127);
    }
    int status = 0;
    struct rusage ru;
    wait4(pid, &status, 0, &ru);
    *ms = bench_now_ms() - t0;
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? ru.ru_maxrss / 1024.0 : -1;
}

int main(int argc, char **argv)
{
    const char *dir = "bench-video";
    int seconds = 10, skip4k = 0;
    if (argc == 4 && !strcmp(argv[1], "--stamp-only"))
        return stamp_only(argv[2], argv[3]);
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--dir") && i + 1 < argc)
            dir = argv[++i];
        else if (!strcmp(argv[i], "--seconds") && i + 1 < argc)
            seconds = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--skip-4k"))
            skip4k = 1;
        else {
            fprintf(stderr, "usage: %s [--dir DIR] [--seconds S] [--skip-4k]\n", argv[0]);
            return 2;
        }
    }
    av_log_set_level(AV_LOG_ERROR);
    mkdir(dir, 0777);
    char src[512], marked[512], plain[512], path[512];
    snprintf(src, sizeof(src), "%s/source.mp4", dir);
    snprintf(marked, sizeof(marked), "%s/stamped.mp4", dir);
    snprintf(plain, sizeof(plain), "%s/plain.mp4", dir);

    clip_params cp;
    clip_params_default(&cp);
    cp.width = 1920;
    cp.height = 1080;
    cp.frames = 24 * seconds;
    cp.shot_sec = 2.5;
    cp.options = "crf=18";
    cp.audio = 1;
    double t = bench_now_ms();
    if (clip_write(src, &cp))
        return 1;
    printf("source: %d s 1080p24 cel clip, x264 crf 18 + audio, %.1f MB (made in %.1f s)\n",
           seconds, file_mb(src), (bench_now_ms() - t) / 1000);

    cm_key *key = NULL, *other = NULL;
    cm_ctx *ctx = NULL;
    cm_stamper *st = NULL;
    cm_verifier *v = NULL, *vo = NULL;
    cm_ctx_new(&ctx);
    if (bench_key(&key, 0) || bench_key(&other, 1) ||
        cm_stamper_new(ctx, key, ISSUE_ID, NULL, &st) || cm_verifier_new(ctx, key, NULL, &v) ||
        cm_verifier_new(ctx, other, NULL, &vo))
        return 1;

    /* speed: stamp vs plain transcode with the same settings */
    cm_video_stamp_info info;
    t = bench_now_ms();
    if (cm_video_stamp(ctx, st, src, marked, NULL, CM_WRITE_FORCE, &info)) {
        fprintf(stderr, "%s\n", cm_ctx_last_error(ctx));
        return 1;
    }
    double stamp_ms = bench_now_ms() - t;
    attack same = {"plain", "libx264", 18, 0, 0, 1, 0, 0, 0};
    t = bench_now_ms();
    if (reencode(src, plain, &same))
        return 1;
    double plain_ms = bench_now_ms() - t;
    printf("\nspeed (1080p, %lld frames, %s %s)\n", (long long)info.frames, info.codec,
           info.quality);
    printf("  stamp            %8.1f s  %6.1f fps  %6.1f MB\n", stamp_ms / 1000,
           info.frames / (stamp_ms / 1000), file_mb(marked));
    printf("  plain transcode  %8.1f s  %6.1f fps  %6.1f MB\n", plain_ms / 1000,
           info.frames / (plain_ms / 1000), file_mb(plain));
    printf("  ratio stamp / transcode: %.2f (target <= 1.15)\n", stamp_ms / plain_ms);
    /* where the difference goes: the encoder coding the mark's texture
     * (the same plain transcode, of the stamped clip) vs celmark's work */
    snprintf(path, sizeof(path), "%s/plain_of_stamped.mp4", dir);
    t = bench_now_ms();
    if (reencode(marked, path, &same))
        return 1;
    double plain2_ms = bench_now_ms() - t;
    printf("  plain transcode of the stamped clip: %.1f s (%.1f MB): the encoder's extra work "
           "on the mark's texture; celmark's own share %.1f s (%.1f ms/frame)\n",
           plain2_ms / 1000, file_mb(path), (stamp_ms - plain2_ms) / 1000,
           (stamp_ms - plain2_ms) / info.frames);

    cm_video_report rep;
    t = bench_now_ms();
    double cpu = bench_cpu_ms();
    if (verify_clip(v, marked, 1, &rep))
        return 1;
    double vms = bench_now_ms() - t, vcpu = bench_cpu_ms() - cpu;
    printf("  verify (1 decoder thread): %.1f s wall, %.1f s cpu for %.1f s of video -> %.2fx "
           "real time (target >= 1)\n",
           vms / 1000, vcpu / 1000, rep.duration, rep.duration / (vms / 1000));
    printf("  stamped clip: %s, z %.2f, fpr %.3g\n",
           rep.whole.marked && rep.whole.issue_id == ISSUE_ID ? "right id" : "WRONG", rep.whole.score,
           rep.whole.fpr);
    cm_video_report_clear(&rep);

    /* robustness */
    double mid0 = seconds / 2.0 - 1.5, mid1 = seconds / 2.0 + 1.5;
    attack attacks[] = {
        {"h264_720p", "libx264", 28, 1280, 720, 1, 0, mid0, mid1},
        {"h265_720p", "libx265", 28, 1280, 720, 1, 0, mid0, mid1},
        {"crop60", "libx264", 28, 0, 0, 0.6, 0, mid0, mid1},
        {"fps30", "libx264", 28, 0, 0, 1, 30, mid0, mid1},
    };
    printf("\nrobustness (stamped clip re-encoded, middle 3 s kept; claim needs fpr <= 1e-9)\n");
    printf("  %-10s %-12s %7s %7s %10s %s\n", "attack", "size", "frames", "z", "fpr", "result");
    int pass = 0, n = (int)(sizeof(attacks) / sizeof(attacks[0]));
    for (int i = 0; i < n; i++) {
        snprintf(path, sizeof(path), "%s/%s.mp4", dir, attacks[i].name);
        if (reencode(marked, path, &attacks[i])) {
            printf("  %-10s attack failed\n", attacks[i].name);
            continue;
        }
        if (verify_clip(v, path, 0, &rep))
            continue;
        int ok = rep.whole.marked && rep.whole.issue_id == ISSUE_ID && rep.whole.fpr <= MAX_FPR;
        char size[32];
        snprintf(size, sizeof(size), "%dx%d", rep.width, rep.height);
        printf("  %-10s %-12s %7lld %7.2f %10.3g %s (%zu segment%s)\n", attacks[i].name, size,
               (long long)rep.frames, rep.whole.score, rep.whole.fpr, ok ? "PASS" : "FAIL",
               rep.nsegments, rep.nsegments == 1 ? "" : "s");
        pass += ok;
        cm_video_report_clear(&rep);
        /* the same attacked clip under another key must claim nothing */
        if (!verify_clip(vo, path, 0, &rep) && rep.whole.marked)
            printf("  %-10s FALSE CLAIM under another key\n", attacks[i].name);
        cm_video_report_clear(&rep);
    }
    printf("  %d/%d attacks attributed\n", pass, n);

    if (!skip4k) {
        char p4k[512], s4k[512];
        snprintf(p4k, sizeof(p4k), "%s/prores4444_4k.mov", dir);
        snprintf(s4k, sizeof(s4k), "%s/prores4444_4k_stamped.mov", dir);
        clip_params k4;
        clip_params_default(&k4);
        k4.width = 3840;
        k4.height = 2160;
        k4.frames = 48;
        k4.codec = "prores_ks";
        k4.pix_fmt = "yuva444p10le";
        k4.options = "profile=4";
        k4.audio = 1;
        struct stat sb;
        if (stat(p4k, &sb) != 0 && clip_write(p4k, &k4)) /* reused when present */
            return 1;
        double ms;
        double rss = stamp_rss(p4k, s4k, &ms);
        printf("\nmemory: stamping a 4K ProRes 4444 clip (%d frames, %.0f MB): peak RSS %.0f MiB "
               "(target < 500), %.1f s\n",
               k4.frames, file_mb(p4k), rss, ms / 1000);
    }
    cm_verifier_free(&v);
    cm_verifier_free(&vo);
    cm_stamper_free(&st);
    cm_key_free(&key);
    cm_key_free(&other);
    cm_ctx_free(&ctx);
    return 0;
}
