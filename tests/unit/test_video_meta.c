/*
 * What a stamped video carries over besides its pictures
 * (formats/video_meta.c), the parts with no ffprobe oracle:
 *
 *   FFV1   libav's own encoder writes one frame with every coder (Golomb-Rice,
 *          default and custom range tables), slice count, slice CRCs and
 *          context model; the configuration record and the first slice
 *          header must read back as those settings. Cut or random records
 *          read as nothing, never a crash.
 *   x265   the HDR10 settings string from mastering display / light level
 *          side data is x265's notation (G, B, R order, 0.00002 and
 *          0.0001 cd/m2 units), the values of the example.
 *   list   "WHAT not kept: WHY" lines; a full list says so in its last line.
 *   frames side data an encoder cannot write is announced once per kind
 *          (HDR10's two kinds as one), none that it writes; x264's own
 *          settings string is dropped, other user data SEI kept.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <setjmp.h>

#include <cmocka.h>

#include <libavcodec/avcodec.h>
#include <libavutil/frame.h>
#include <libavutil/opt.h>

#include "formats/video_meta.h"

typedef struct ffv1_case {
    const char *coder; /* the encoder's option */
    int coder_read;    /* what the record says */
    int slices, slicecrc, context;
    enum AVPixelFormat fmt;
} ffv1_case;

/* Encode one frame with FFV1 level 3 and these settings; returns the
 * parameters (extradata) and fills pkt. */
static AVCodecParameters *encode_ffv1(const ffv1_case *c, AVPacket *pkt)
{
    const AVCodec *codec = avcodec_find_encoder(AV_CODEC_ID_FFV1);
    assert_non_null(codec);
    AVCodecContext *e = avcodec_alloc_context3(codec);
    assert_non_null(e);
    e->width = 96;
    e->height = 64;
    e->pix_fmt = c->fmt;
    e->time_base = (AVRational){1, 24};
    e->level = 3;
    e->slices = c->slices;
    e->gop_size = 1;
    e->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
    AVDictionary *o = NULL;
    av_dict_set(&o, "coder", c->coder, 0);
    av_dict_set_int(&o, "slicecrc", c->slicecrc, 0);
    av_dict_set_int(&o, "context", c->context, 0);
    assert_int_equal(avcodec_open2(e, codec, &o), 0);
    av_dict_free(&o);
    AVFrame *f = av_frame_alloc();
    f->format = e->pix_fmt;
    f->width = e->width;
    f->height = e->height;
    assert_int_equal(av_frame_get_buffer(f, 0), 0);
    for (int p = 0; p < 3; p++)
        for (int y = 0; y < (p ? e->height / 2 : e->height); y++)
            for (int x = 0; x < f->linesize[p]; x++)
                f->data[p][y * f->linesize[p] + x] = (uint8_t)(x * 3 + y * 7 + p * 50);
    f->pts = 0;
    assert_int_equal(avcodec_send_frame(e, f), 0);
    assert_int_equal(avcodec_send_frame(e, NULL), 0);
    assert_int_equal(avcodec_receive_packet(e, pkt), 0);
    AVCodecParameters *par = avcodec_parameters_alloc();
    assert_int_equal(avcodec_parameters_from_context(par, e), 0);
    av_frame_free(&f);
    avcodec_free_context(&e);
    return par;
}

static void test_ffv1_settings_read_back(void **state)
{
    (void)state;
    static const ffv1_case cases[] = {
        {"range_tab", 2, 4, 1, 1, AV_PIX_FMT_YUV420P},
        {"range_def", 1, 6, 0, 0, AV_PIX_FMT_YUV420P},
        {"range_def", 1, 4, 1, 1, AV_PIX_FMT_YUV420P},
        {"rice", 0, 9, 1, 1, AV_PIX_FMT_YUV420P},
        {"rice", 0, 4, 0, 0, AV_PIX_FMT_YUV420P},
        {"range_tab", 2, 16, 1, 0, AV_PIX_FMT_YUV420P10LE},
    };
    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        const ffv1_case *c = &cases[k];
        AVPacket *pkt = av_packet_alloc();
        AVCodecParameters *par = encode_ffv1(c, pkt);
        cm__ffv1_settings fs;
        cm__video_ffv1_settings(par, &fs);
        cm__ffv1_packet_context(pkt->data, (size_t)pkt->size, &fs);
        assert_true(fs.found);
        assert_int_equal(fs.version, 3);
        assert_int_equal(fs.coder, c->coder_read);
        assert_int_equal(fs.slices, c->slices);
        assert_int_equal(fs.slicecrc, c->slicecrc);
        assert_int_equal(fs.context, c->context);
        /* a cut record, or noise, reads as nothing (or anything), safely */
        for (int n = 0; n < par->extradata_size; n += 3) {
            AVCodecParameters cut = *par;
            cut.extradata_size = n;
            cm__video_ffv1_settings(&cut, &fs);
            cm__ffv1_packet_context(pkt->data, (size_t)(n < pkt->size ? n : pkt->size), &fs);
        }
        for (int i = 0; i < par->extradata_size; i++)
            par->extradata[i] = (uint8_t)(i * 37 + 11);
        cm__video_ffv1_settings(par, &fs);
        avcodec_parameters_free(&par);
        av_packet_free(&pkt);
    }
}

static void test_x265_hdr_string(void **state)
{
    (void)state;
    cm__hdr_meta h;
    memset(&h, 0, sizeof(h));
    char buf[320];
    cm__video_x265_hdr(&h, buf, sizeof(buf));
    assert_string_equal(buf, "");
    h.has_md = 1;
    h.md.has_primaries = h.md.has_luminance = 1;
    /* R, G, B as AVMasteringDisplayMetadata lists them */
    h.md.display_primaries[0][0] = (AVRational){34000, 50000};
    h.md.display_primaries[0][1] = (AVRational){16000, 50000};
    h.md.display_primaries[1][0] = (AVRational){13250, 50000};
    h.md.display_primaries[1][1] = (AVRational){34500, 50000};
    h.md.display_primaries[2][0] = (AVRational){7500, 50000};
    h.md.display_primaries[2][1] = (AVRational){3000, 50000};
    h.md.white_point[0] = (AVRational){15635, 50000};
    h.md.white_point[1] = (AVRational){16450, 50000};
    h.md.max_luminance = (AVRational){10000000, 10000};
    h.md.min_luminance = (AVRational){1, 10000};
    h.has_cl = 1;
    h.cl.MaxCLL = 1000;
    h.cl.MaxFALL = 400;
    cm__video_x265_hdr(&h, buf, sizeof(buf));
    assert_string_equal(buf, "hdr10=1:master-display=G(13250,34500)B(7500,3000)R(34000,16000)"
                             "WP(15635,16450)L(10000000,1):max-cll=1000,400");
    h.has_md = 0;
    cm__video_x265_hdr(&h, buf, sizeof(buf));
    assert_string_equal(buf, "hdr10=1:max-cll=1000,400");
}

static void test_not_kept_list(void **state)
{
    (void)state;
    cm_video_stamp_info info;
    memset(&info, 0, sizeof(info));
    cm__video_not_kept(NULL, "x", "y"); /* no list: nothing happens */
    cm__video_not_kept(&info, "2 chapters", "the %s container has no chapters", "mpegts");
    assert_int_equal(info.nnot_kept, 1);
    assert_string_equal(info.not_kept[0],
                        "2 chapters not kept: the mpegts container has no chapters");
    for (int k = 0; k < 40; k++)
        cm__video_not_kept(&info, "stream", "reason %d", k);
    assert_int_equal(info.nnot_kept, CM_VIDEO_NOT_KEPT_MAX);
    assert_non_null(strstr(info.not_kept[CM_VIDEO_NOT_KEPT_MAX - 1], "more not kept: "));
    /* a long reason is cut, still terminated */
    memset(&info, 0, sizeof(info));
    char longwhy[600];
    memset(longwhy, 'a', sizeof(longwhy) - 1);
    longwhy[sizeof(longwhy) - 1] = '\0';
    cm__video_not_kept(&info, "what", "%s", longwhy);
    assert_int_equal((int)strlen(info.not_kept[0]), CM_VIDEO_NOT_KEPT_LEN - 1);
}

/* A frame with HDR10 side data (mastering display and light level) and
 * two user data SEI: x264's settings string and another. */
static AVFrame *hdr_frame(void)
{
    AVFrame *f = av_frame_alloc();
    assert_non_null(f);
    assert_non_null(av_frame_new_side_data(f, AV_FRAME_DATA_MASTERING_DISPLAY_METADATA,
                                           sizeof(AVMasteringDisplayMetadata)));
    assert_non_null(av_frame_new_side_data(f, AV_FRAME_DATA_CONTENT_LIGHT_LEVEL,
                                           sizeof(AVContentLightMetadata)));
    static const char *const sei[] = {"x264 - core 164 - H.264/MPEG-4 AVC codec",
                                      "studio note: reel 7"};
    for (int k = 0; k < 2; k++) {
        size_t n = strlen(sei[k]);
        AVFrameSideData *sd =
            av_frame_new_side_data(f, AV_FRAME_DATA_SEI_UNREGISTERED, 16 + n);
        assert_non_null(sd);
        memset(sd->data, 0x5a, 16); /* the UUID */
        memcpy(sd->data + 16, sei[k], n);
    }
    return f;
}

static void test_frame_side_data(void **state)
{
    (void)state;
    AVStream st;
    memset(&st, 0, sizeof(st));
    cm_video_stamp_info info;
    memset(&info, 0, sizeof(info));
    unsigned announced = 0;
    for (int n = 0; n < 3; n++) { /* three frames: one line */
        AVFrame *f = hdr_frame();
        assert_int_equal(cm__video_frame_side_data(f, "libx264", &st, &announced, &info), 0);
        /* the source encoder's string dropped, the studio's kept */
        int user = 0;
        for (int k = 0; k < f->nb_side_data; k++)
            if (f->side_data[k]->type == AV_FRAME_DATA_SEI_UNREGISTERED) {
                user++;
                assert_memory_equal(f->side_data[k]->data + 16, "studio note", 11);
            }
        assert_int_equal(user, 1);
        av_frame_free(&f);
    }
    assert_int_equal(info.nnot_kept, 1);
    assert_non_null(strstr(info.not_kept[0], "HDR10 SEI"));
    assert_non_null(strstr(info.not_kept[0], "libx264"));
    /* x265 writes it (given as settings): nothing to announce */
    memset(&info, 0, sizeof(info));
    announced = 0;
    AVFrame *f = hdr_frame();
    assert_int_equal(cm__video_frame_side_data(f, "libx265", &st, &announced, &info), 0);
    av_frame_free(&f);
    assert_int_equal(info.nnot_kept, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ffv1_settings_read_back),
        cmocka_unit_test(test_x265_hdr_string),
        cmocka_unit_test(test_not_kept_list),
        cmocka_unit_test(test_frame_side_data),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
