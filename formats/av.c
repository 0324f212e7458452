/*
 * Still images through FFmpeg (libavformat, libavcodec, libswscale): JPEG,
 * WebP, BMP, TIFF, GIF and every other image format the installed libav
 * decodes. Leaked frames are rarely PNGs. Read-only: cm_image_write() turns
 * these images into PNG (formats/image.c).
 *
 * Recognition is by content only (libav sees an empty file name, so the
 * extension never counts) and happens in two steps:
 *
 *   probe(head)  the first CM__PROBE_BYTES bytes: claim the file if libav's
 *                best guess is one of its image demuxers ("*_pipe" and
 *                "gif") with any score. 64 bytes rarely prove a JPEG (its
 *                probe needs the scan), so this step only routes the file.
 *   read()       probe again on up to PROBE_MAX_BYTES of the file, as libav
 *                itself does, and accept only an image demuxer scoring at
 *                least MIN_SCORE; anything else is "not a recognised image
 *                format" (CM_E_FORMAT), so text, random bytes and weak
 *                two-byte signatures never reach a decoder.
 *
 * Not claimed: png_pipe (formats/png_read.c reads PNG faithfully, with its
 * chunks), svg_pipe (a vector XML document rendered by librsvg: not a frame,
 * and a large parser to expose) and xbm_pipe (any text starting "#define").
 *
 * Decoding reads the very FILE that was probed and size-checked through a
 * custom AVIOContext: no path is handed to libav, so a name is never parsed
 * as a URL ("concat:", "subfile,,") and the file cannot be swapped between
 * the checks and the read. Nested opens are refused (protocol whitelist
 * "none"); the demuxer is forced and whitelisted. The first frame of the
 * first video stream is decoded single-threaded with the decoder's
 * max_pixels set to the caller's limit: image demuxers do not know the size
 * before decoding (GIF's does and is checked first), and libav refuses an
 * oversized picture in ff_set_dimensions()/ff_get_buffer() before
 * allocating it. The size it names in its log line ("Picture size WxH ...")
 * turns that refusal into CM_E_LIMIT.
 *
 * Conversion (libswscale, bit-exact, accurate rounding, full chroma
 * interpolation) keeps as much as the cm_image layouts hold:
 *
 *   source                      decoded as
 *   grey (1..8 bit)             GRAY8              grey > 8 bit    GRAY16
 *   grey + alpha                YA8 / YA16
 *   RGB, YUV, Bayer, XYZ        RGB24              > 8 bit, float  RGB48
 *   ... with alpha              RGBA               > 8 bit, float  RGBA64
 *   palette                     RGB24, or RGBA if a pixel is not opaque
 *
 * 16-bit samples in host byte order. YUV uses the tagged matrix (BT.601
 * when untagged, as JPEG and WebP define) and the tagged range; JPEG's
 * yuvj* formats and full-range tags are full range, so flat colours come
 * out exact. Grey is taken as full range unless tagged otherwise.
 *
 * libav's own logging is replaced, once per process, by a callback that
 * prints nothing and keeps the first error line of the current read in a
 * thread-local buffer; it is appended to the libav error text
 * (av_strerror) in the context detail. It also raises av_log's level to
 * AV_LOG_ERROR if it was lower, or the callback would never see the
 * "Picture size" line. Note that this replaces the log callback of a host
 * program that uses libav itself; if that program later sets the level to
 * AV_LOG_QUIET, oversized pictures are reported as corrupt, not as over the
 * limit (they are refused either way).
 *
 * Decompression bombs: a few libav decoders (BMP, PGM) allocate the picture
 * before checking that the file holds enough data for it, and some formats
 * (QOI runs, WebP lossless, GIF) can claim a huge picture from a few bytes
 * (a 114-byte QOI decodes to 16000 x 16000, 2.3 GiB resident). So the
 * decoder's max_pixels is also capped at MAX_PIXELS_PER_BYTE times the
 * file size (at least MIN_PIXEL_CAP): libav refuses a larger picture in
 * ff_get_buffer() before allocating it, and we report a bomb.
 */
#include "format.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/avutil.h>
#include <libavutil/pixdesc.h>
#include <libswscale/swscale.h>

/* Bytes examined by the second probe: libav's own largest probe buffer
 * (PROBE_BUF_MAX, 1 MiB), enough for every signature and for a JPEG's scan
 * behind a large EXIF block. */
#define PROBE_MAX_BYTES (1 << 20)

/* Lowest probe score accepted: AVPROBE_SCORE_RETRY (25), the score libav
 * itself stops probing at. A whole JPEG scores 51, one cut inside its scan
 * 25-26 (read: libav decodes what is there), one cut inside its header 7;
 * weak signatures (a BMP with nonzero reserved bytes, Pictor's two-byte
 * magic, QuickDraw, GEM or PCX without their full header) score 12. */
#define MIN_SCORE AVPROBE_SCORE_RETRY

/* Largest file handed to libav: image demuxers read a still as one
 * int-sized packet, so stay well under INT_MAX; no still is 1 GiB. */
#define MAX_AV_FILE_BYTES (INT64_C(1) << 30)

/* Most pixels a still may decode to per byte of file: 4096. Real
 * encodings stay far below (a flat JPEG ~60 px/byte, deflate at most 1032
 * bytes per byte, GIF's 12-bit LZW ~2700 px/byte; cel art in WebP or PNG
 * 10-50). Files below 1 KiB may still hold MIN_PIXEL_CAP (4 Mpixel, 16 MiB
 * of RGBA): an icon-sized bomb costs no more than that. */
#define MAX_PIXELS_PER_BYTE 4096
#define MIN_PIXEL_CAP (UINT64_C(4) << 20)

/* AVIOContext buffer: 64 KiB, a few stdio reads per typical still. */
#define AVIO_BUFFER_BYTES (64 * 1024)

/* Row alignment and slack of the conversion buffer: SIMD paths of swscale
 * may write a little past a row's last pixel. */
#define ROW_ALIGN 64

/* ---- libav logging ---------------------------------------------------- */

static pthread_once_t log_once = PTHREAD_ONCE_INIT;

/* First error line logged since log_reset() on this thread, and the size
 * named by libav's "Picture size WxH ..." refusal, if any. */
static _Thread_local char log_first[160];
static _Thread_local unsigned log_pic_w, log_pic_h;

static void log_callback(void *avcl, int level, const char *fmt, va_list vl)
{
    char line[sizeof(log_first)];
    unsigned w, h;

    (void)avcl;
    if (level > AV_LOG_ERROR || !fmt)
        return; /* warnings, information, debugging: dropped */
    vsnprintf(line, sizeof(line), fmt, vl);
    size_t n = strlen(line);
    while (n && (line[n - 1] == '\n' || line[n - 1] == '\r' ||
                 line[n - 1] == ' ' || line[n - 1] == '.'))
        line[--n] = '\0';
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)line[i] < 0x20)
            line[i] = ' '; /* keep the detail on one line */
    if (!n)
        return;
    if (!log_pic_w && sscanf(line, "Picture size %ux%u", &w, &h) == 2 && w &&
        h) {
        log_pic_w = w;
        log_pic_h = h;
    }
    if (!log_first[0])
        snprintf(log_first, sizeof(log_first), "%s", line);
}

/* Our callback only sees what passes av_log's level check: make sure
 * errors do (the callback prints nothing, so this shows nothing). */
static void install_log(void)
{
    av_log_set_callback(log_callback);
    if (av_log_get_level() < AV_LOG_ERROR)
        av_log_set_level(AV_LOG_ERROR);
}

void cm__av_log_reset(void)
{
    pthread_once(&log_once, install_log);
    log_first[0] = '\0';
    log_pic_w = log_pic_h = 0;
}

int cm__av_refused_size(unsigned *w, unsigned *h)
{
    if (!log_pic_w || !log_pic_h)
        return 0;
    *w = log_pic_w;
    *h = log_pic_h;
    return 1;
}

/* ---- probing ---------------------------------------------------------- */

/* Image demuxers we read: libav's "<name>_pipe" family and "gif". */
static int is_image_demuxer(const AVInputFormat *f)
{
    static const char *const skipped[] = {"png_pipe", "svg_pipe", "xbm_pipe"};
    static const char suffix[] = "_pipe";

    if (!f || !f->name)
        return 0;
    if (!strcmp(f->name, "gif"))
        return 1;
    for (size_t i = 0; i < sizeof(skipped) / sizeof(skipped[0]); i++)
        if (!strcmp(f->name, skipped[i]))
            return 0;
    size_t n = strlen(f->name);
    return n > sizeof(suffix) - 1 &&
           !strcmp(f->name + n - (sizeof(suffix) - 1), suffix);
}

/* libav's best guess for buf (len bytes followed by AVPROBE_PADDING_SIZE
 * zero bytes), by content only. */
static const AVInputFormat *probe_buffer(uint8_t *buf, size_t len, int *score)
{
    AVProbeData pd;

    memset(&pd, 0, sizeof(pd));
    pd.filename = "";
    pd.buf = buf;
    pd.buf_size = (int)len;
    *score = 0;
    return av_probe_input_format3(&pd, 1, score);
}

static int probe_av(const uint8_t *head, size_t len)
{
    uint8_t buf[CM__PROBE_BYTES + AVPROBE_PADDING_SIZE];
    int score;

    if (!head || !len)
        return 0;
    if (len > CM__PROBE_BYTES)
        len = CM__PROBE_BYTES;
    cm__av_log_reset();
    memset(buf, 0, sizeof(buf));
    memcpy(buf, head, len);
    const AVInputFormat *f = probe_buffer(buf, len, &score);
    return score > 0 && is_image_demuxer(f);
}

/* ---- reading ---------------------------------------------------------- */

typedef struct av_meta {
    char name[16];       /* "jpeg", "webp": cm_image_info.format */
    char color_type[24]; /* source layout */
    int bit_depth;       /* source bits per component */
    int converted;
    char codec[32], pix_fmt[32];
    char range[16], space[32], primaries[32], transfer[32];
    size_t icc_bytes;
    char lost[200]; /* source tags no copy carries (cm__av_set_lost) */
} av_meta;

typedef struct reader {
    cm_ctx *ctx;
    const char *path;
    FILE *fp;
    const cm_limits *limits;
    int io_errno;       /* errno of a failed fread/fseek, else 0 */
    int64_t file_bytes; /* -1 if unknown */
    uint64_t bomb_cap;  /* most pixels the file's size allows, 0 = none */

    const AVInputFormat *ifmt;
    char label[16]; /* "JPEG", for messages */
    uint8_t *probe_buf;
    AVIOContext *pb;
    AVFormatContext *fc;
    AVDictionary *opts;
    AVCodecContext *dec;
    AVPacket *pkt;
    AVFrame *frame;
    struct SwsContext *sws;
    uint8_t *conv; /* converted pixels, row_align'ed rows */
    cm_image *img;
    av_meta *meta;
} reader;

static int io_read(void *opaque, uint8_t *buf, int size)
{
    reader *r = opaque;
    if (size <= 0)
        return 0;
    size_t n = fread(buf, 1, (size_t)size, r->fp);
    if (n > 0)
        return (int)n;
    if (ferror(r->fp)) {
        r->io_errno = errno ? errno : EIO;
        return AVERROR(EIO);
    }
    return AVERROR_EOF;
}

static int64_t io_seek(void *opaque, int64_t offset, int whence)
{
    reader *r = opaque;
    whence &= ~AVSEEK_FORCE;
    if (whence == AVSEEK_SIZE)
        return r->file_bytes >= 0 ? r->file_bytes : AVERROR(ENOSYS);
    if (whence != SEEK_SET && whence != SEEK_CUR && whence != SEEK_END)
        return AVERROR(EINVAL);
    if (fseeko(r->fp, (off_t)offset, whence) != 0)
        return AVERROR(errno ? errno : EINVAL);
    off_t pos = ftello(r->fp);
    return pos < 0 ? AVERROR(errno ? errno : EINVAL) : (int64_t)pos;
}

/* "jpeg_pipe" -> "jpeg"; "gif" -> "gif". */
static void short_name(const AVInputFormat *f, char *out, size_t size)
{
    const char *s = f->name;
    const char *p = strstr(s, "_pipe");
    size_t n = p ? (size_t)(p - s) : strlen(s);
    snprintf(out, size, "%.*s", (int)n, s);
}

/* Name for messages: "JPEG", "WebP", "TIFF". */
static void label_name(const char *name, char *out, size_t size)
{
    static const char *const special[][2] = {
        {"webp", "WebP"}, {"j2k", "JPEG 2000"}, {"jpegls", "JPEG-LS"},
        {"jpegxl", "JPEG XL"}, {"photocd", "Photo CD"}};
    for (size_t i = 0; i < sizeof(special) / sizeof(special[0]); i++)
        if (!strcmp(name, special[i][0])) {
            snprintf(out, size, "%s", special[i][1]);
            return;
        }
    size_t i = 0;
    for (; name[i] && i + 1 < size; i++)
        out[i] = (char)(name[i] >= 'a' && name[i] <= 'z' ? name[i] - 32 : name[i]);
    out[i] = '\0';
}

/* libav's text for err, with the first logged error line when it adds
 * something. */
void cm__av_describe_error(int err, char *out, size_t size)
{
    char text[AV_ERROR_MAX_STRING_SIZE];
    if (av_strerror(err, text, sizeof(text)) < 0)
        snprintf(text, sizeof(text), "libav error %d", err);
    if (log_first[0] && strcmp(log_first, text))
        snprintf(out, size, "%s (%s)", text, log_first);
    else
        snprintf(out, size, "%s", text);
}

static int limit_error(reader *r, uint64_t w, uint64_t h)
{
    return cm__error(r->ctx, CM_E_LIMIT,
                     "%s: image is %llu x %llu (%llu pixels), above the limit "
                     "of %llu pixels",
                     r->path, (unsigned long long)w, (unsigned long long)h,
                     (unsigned long long)(w * h),
                     (unsigned long long)r->limits->max_pixels);
}

/* Translate a libav failure while opening or decoding. */
static int av_failure(reader *r, int err, const char *what)
{
    char detail[AV_ERROR_MAX_STRING_SIZE + sizeof(log_first) + 8];

    if (r->io_errno)
        return cm__error(r->ctx, CM_E_IO, "%s: cannot read: %s", r->path,
                         strerror(r->io_errno));
    if (err == AVERROR(ENOMEM))
        return cm__error(r->ctx, CM_E_NOMEM, "%s: out of memory decoding %s",
                         r->path, r->label);
    if (log_pic_w && log_pic_h) {
        /* libav refused the picture size: over max_pixels, or over the
         * largest picture it handles at all (about 2^28 pixels). */
        const uint64_t w = log_pic_w, h = log_pic_h;
        if (w * h > r->limits->max_pixels)
            return limit_error(r, w, h);
        if (r->bomb_cap && w * h > r->bomb_cap)
            return cm__error(r->ctx, CM_E_CORRUPT,
                             "%s: %s claims %llu x %llu pixels from %lld bytes, more than "
                             "any real picture of that size holds; refused as a "
                             "decompression bomb",
                             r->path, r->label, (unsigned long long)w,
                             (unsigned long long)h, (long long)r->file_bytes);
        return cm__error(r->ctx, CM_E_LIMIT,
                         "%s: image is %llu x %llu, larger than libav can "
                         "decode; it cannot be read here",
                         r->path, (unsigned long long)w, (unsigned long long)h);
    }
    cm__av_describe_error(err, detail, sizeof(detail));
    if (err == AVERROR_PATCHWELCOME || err == AVERROR(ENOSYS) ||
        err == AVERROR_DECODER_NOT_FOUND)
        return cm__error(r->ctx, CM_E_UNSUPPORTED,
                         "%s: cannot %s %s: %s; convert the file to PNG",
                         r->path, what, r->label, detail);
    return cm__error(r->ctx, CM_E_CORRUPT, "%s: cannot %s %s: %s", r->path,
                     what, r->label, detail);
}

/* Check the file and find its demuxer (second probe, see the file
 * comment). Leaves fp at the start of the file. */
static int identify(reader *r)
{
    struct stat st;
    const uint64_t max_bytes = r->limits->max_file_bytes;

    r->file_bytes = -1;
    if (fstat(fileno(r->fp), &st) != 0)
        return cm__error(r->ctx, CM_E_IO, "%s: cannot open: %s", r->path,
                         strerror(errno));
    if (S_ISREG(st.st_mode)) {
        if (st.st_size == 0)
            return cm__error(r->ctx, CM_E_CORRUPT, "%s: empty file", r->path);
        if ((uint64_t)st.st_size > max_bytes)
            return cm__error(r->ctx, CM_E_LIMIT,
                             "%s: file is %llu bytes, above the limit of %llu "
                             "bytes",
                             r->path, (unsigned long long)st.st_size,
                             (unsigned long long)max_bytes);
        if ((int64_t)st.st_size > MAX_AV_FILE_BYTES)
            return cm__error(r->ctx, CM_E_LIMIT,
                             "%s: file is %llu bytes, above the limit of %llu "
                             "bytes for images read through libav",
                             r->path, (unsigned long long)st.st_size,
                             (unsigned long long)MAX_AV_FILE_BYTES);
        r->file_bytes = (int64_t)st.st_size;
    }

    size_t want = PROBE_MAX_BYTES;
    if (r->file_bytes >= 0 && (uint64_t)r->file_bytes < want)
        want = (size_t)r->file_bytes;
    if (!(r->probe_buf = calloc(1, want + AVPROBE_PADDING_SIZE)))
        return cm__error(r->ctx, CM_E_NOMEM, "%s: out of memory", r->path);
    if (fseeko(r->fp, 0, SEEK_SET) != 0)
        return cm__error(r->ctx, CM_E_IO, "%s: cannot read: %s", r->path,
                         strerror(errno));
    size_t n = fread(r->probe_buf, 1, want, r->fp);
    if (n < want && ferror(r->fp))
        return cm__error(r->ctx, CM_E_IO, "%s: cannot read: %s", r->path,
                         strerror(errno));
    if (n == 0)
        return cm__error(r->ctx, CM_E_CORRUPT, "%s: empty file", r->path);
    if (fseeko(r->fp, 0, SEEK_SET) != 0)
        return cm__error(r->ctx, CM_E_IO, "%s: cannot read: %s", r->path,
                         strerror(errno));

    int score;
    const AVInputFormat *f = probe_buffer(r->probe_buf, n, &score);
    free(r->probe_buf);
    r->probe_buf = NULL;
    if (!is_image_demuxer(f) || score <= 0)
        return cm__error(r->ctx, CM_E_FORMAT,
                         "%s: not a recognised image format", r->path);
    short_name(f, r->meta->name, sizeof(r->meta->name));
    label_name(r->meta->name, r->label, sizeof(r->label));
    if (score < MIN_SCORE)
        return cm__error(r->ctx, CM_E_FORMAT,
                         "%s: not a recognised image format (starts like %s "
                         "but is truncated or damaged)",
                         r->path, r->label);
    r->ifmt = f;
    return CM_OK;
}

/* Open the demuxer on fp and the decoder of its video stream. */
static int open_decoder(reader *r)
{
    uint8_t *buf = NULL;
    int ret;

    if (!(buf = av_malloc(AVIO_BUFFER_BYTES)))
        return cm__error(r->ctx, CM_E_NOMEM, "%s: out of memory", r->path);
    r->pb = avio_alloc_context(buf, AVIO_BUFFER_BYTES, 0, r, io_read, NULL,
                               io_seek);
    if (!r->pb) {
        av_free(buf);
        return cm__error(r->ctx, CM_E_NOMEM, "%s: out of memory", r->path);
    }
    if (!(r->fc = avformat_alloc_context()))
        return cm__error(r->ctx, CM_E_NOMEM, "%s: out of memory", r->path);
    r->fc->pb = r->pb;
    r->fc->flags |= AVFMT_FLAG_CUSTOM_IO;
    if (av_dict_set(&r->opts, "format_whitelist", r->ifmt->name, 0) < 0 ||
        av_dict_set(&r->opts, "protocol_whitelist", "none", 0) < 0)
        return cm__error(r->ctx, CM_E_NOMEM, "%s: out of memory", r->path);
    /* The URL is empty: the name is not libav's business (and must not
     * steer the image demuxer). On failure fc is freed and NULLed. */
    if ((ret = avformat_open_input(&r->fc, "", r->ifmt, &r->opts)) < 0)
        return av_failure(r, ret, "read");

    int idx = av_find_best_stream(r->fc, AVMEDIA_TYPE_VIDEO, -1, -1, NULL, 0);
    if (idx < 0)
        return cm__error(r->ctx, CM_E_UNSUPPORTED,
                         "%s: no image stream in %s file; convert the file to "
                         "PNG",
                         r->path, r->label);
    const AVCodecParameters *par = r->fc->streams[idx]->codecpar;
    if (par->width > 0 && par->height > 0 &&
        (uint64_t)par->width * (uint64_t)par->height > r->limits->max_pixels)
        return limit_error(r, (uint64_t)par->width, (uint64_t)par->height);

    const AVCodec *codec = avcodec_find_decoder(par->codec_id);
    if (!codec)
        return cm__error(r->ctx, CM_E_UNSUPPORTED,
                         "%s: this FFmpeg has no %s decoder for %s files; "
                         "convert the file to PNG",
                         r->path, avcodec_get_name(par->codec_id), r->label);
    if (!(r->dec = avcodec_alloc_context3(codec)))
        return cm__error(r->ctx, CM_E_NOMEM, "%s: out of memory", r->path);
    if ((ret = avcodec_parameters_to_context(r->dec, par)) < 0)
        return av_failure(r, ret, "decode");
    r->dec->thread_count = 1;
    uint64_t cap = r->limits->max_pixels;
    if (r->file_bytes > 0) {
        uint64_t by_size = (uint64_t)r->file_bytes * MAX_PIXELS_PER_BYTE;
        if (by_size < MIN_PIXEL_CAP)
            by_size = MIN_PIXEL_CAP;
        r->bomb_cap = by_size;
        if (by_size < cap)
            cap = by_size;
    }
    r->dec->max_pixels = cap > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)cap;
    if ((ret = avcodec_open2(r->dec, codec, NULL)) < 0)
        return av_failure(r, ret, "decode");
    snprintf(r->meta->codec, sizeof(r->meta->codec), "%s", codec->name);
    return idx;
}

/* Decode the first frame of stream idx into r->frame. */
static int decode_first(reader *r, int idx)
{
    int ret, eof = 0;

    if (!(r->pkt = av_packet_alloc()) || !(r->frame = av_frame_alloc()))
        return cm__error(r->ctx, CM_E_NOMEM, "%s: out of memory", r->path);
    for (;;) {
        ret = avcodec_receive_frame(r->dec, r->frame);
        if (ret >= 0)
            return CM_OK;
        if (ret == AVERROR_EOF)
            return cm__error(r->ctx, CM_E_CORRUPT,
                             "%s: no image found in %s file%s%s", r->path,
                             r->label, log_first[0] ? ": " : "", log_first);
        if (ret != AVERROR(EAGAIN))
            return av_failure(r, ret, "decode");
        if (eof)
            return cm__error(r->ctx, CM_E_INTERNAL,
                             "%s: %s decoder wants input after the end",
                             r->path, r->label);

        /* The decoder wants input: the next packet of our stream, or the
         * end (drain: a decoder may hold the only frame until then). */
        for (;;) {
            ret = av_read_frame(r->fc, r->pkt);
            if (ret == AVERROR_EOF) {
                eof = 1;
                ret = avcodec_send_packet(r->dec, NULL);
                break;
            }
            if (ret < 0)
                return av_failure(r, ret, "read");
            if (r->pkt->stream_index == idx) {
                ret = avcodec_send_packet(r->dec, r->pkt);
                av_packet_unref(r->pkt);
                break;
            }
            av_packet_unref(r->pkt);
        }
        if (ret < 0 && ret != AVERROR(EAGAIN) && ret != AVERROR_EOF)
            return av_failure(r, ret, "decode");
    }
}

/* Output layout for a source pixel format (see the file comment). */
typedef struct layout {
    enum AVPixelFormat dst;
    int channels, has_alpha, depth;
} layout;

static int palette_has_alpha(const AVFrame *f)
{
    const uint32_t *pal = (const uint32_t *)(const void *)f->data[1];
    if (!pal || !f->data[0])
        return 1; /* cannot tell: keep alpha */
    for (int y = 0; y < f->height; y++) {
        const uint8_t *row = f->data[0] + (ptrdiff_t)y * f->linesize[0];
        for (int x = 0; x < f->width; x++)
            if ((pal[row[x]] >> 24) != 0xff)
                return 1;
    }
    return 0;
}

/* GIF is a palette format, but libav's decoder hands it out as BGRA: 1 if
 * some pixel of such an 8-bit packed frame is not opaque. */
static int packed_has_alpha(const AVFrame *f, const AVPixFmtDescriptor *d)
{
    const int a = d->nb_components - 1;
    if (d->nb_components != 4 || (d->flags & AV_PIX_FMT_FLAG_PLANAR) ||
        d->comp[a].depth != 8 || d->comp[a].step != 4 || !f->data[0])
        return 1; /* not that layout: keep alpha */
    for (int y = 0; y < f->height; y++) {
        const uint8_t *row = f->data[0] + (ptrdiff_t)y * f->linesize[0];
        for (int x = 0; x < f->width; x++)
            if (row[4 * x + d->comp[a].offset] != 0xff)
                return 1;
    }
    return 0;
}

static void choose_layout(const AVFrame *f, const AVPixFmtDescriptor *d,
                          int gif, layout *out, av_meta *m)
{
    const int alpha = (d->flags & AV_PIX_FMT_FLAG_ALPHA) != 0;
    const int pal = (d->flags & AV_PIX_FMT_FLAG_PAL) != 0;
    const int colour_comps = d->nb_components - (alpha ? 1 : 0);
    int depth = 0;
    for (int i = 0; i < d->nb_components; i++)
        if (d->comp[i].depth > depth)
            depth = d->comp[i].depth;
    const int wide = depth > 8 || (d->flags & AV_PIX_FMT_FLAG_FLOAT);
    const int rgb = (d->flags & (AV_PIX_FMT_FLAG_RGB | AV_PIX_FMT_FLAG_BAYER)) != 0;

    m->bit_depth = depth;
    if (pal || (gif && alpha && depth == 8)) {
        const int a = pal ? palette_has_alpha(f) : packed_has_alpha(f, d);
        *out = (layout){a ? AV_PIX_FMT_RGBA : AV_PIX_FMT_RGB24, a ? 4 : 3, a, 8};
        snprintf(m->color_type, sizeof(m->color_type), "palette");
        m->converted = 1;
        return;
    }
    if (colour_comps == 1 && !rgb) {
        if (alpha) {
            *out = (layout){wide ? AV_PIX_FMT_YA16 : AV_PIX_FMT_YA8, 2, 1,
                            wide ? 16 : 8};
            if (!sws_isSupportedOutput(out->dst))
                *out = (layout){wide ? AV_PIX_FMT_RGBA64 : AV_PIX_FMT_RGBA, 4,
                                1, wide ? 16 : 8};
        } else {
            *out = (layout){wide ? AV_PIX_FMT_GRAY16 : AV_PIX_FMT_GRAY8, 1, 0,
                            wide ? 16 : 8};
        }
        snprintf(m->color_type, sizeof(m->color_type), "%s",
                 alpha ? "gray+alpha" : "gray");
    } else {
        if (alpha)
            *out = (layout){wide ? AV_PIX_FMT_RGBA64 : AV_PIX_FMT_RGBA, 4, 1,
                            wide ? 16 : 8};
        else
            *out = (layout){wide ? AV_PIX_FMT_RGB48 : AV_PIX_FMT_RGB24, 3, 0,
                            wide ? 16 : 8};
        if (rgb)
            snprintf(m->color_type, sizeof(m->color_type), "%s",
                     alpha ? "rgba" : "rgb");
        else
            snprintf(m->color_type, sizeof(m->color_type), "%s",
                     alpha ? "yuv+alpha" : "yuv");
    }
    /* Same layout and depth as the source: nothing but byte order and
     * component order changed. */
    m->converted = !(rgb || colour_comps == 1) || (depth != 8 && depth != 16) ||
                   (d->flags & (AV_PIX_FMT_FLAG_FLOAT | AV_PIX_FMT_FLAG_BAYER)) ||
                   out->channels != d->nb_components;
}

static int is_yuvj(enum AVPixelFormat f)
{
    return f == AV_PIX_FMT_YUVJ420P || f == AV_PIX_FMT_YUVJ422P ||
           f == AV_PIX_FMT_YUVJ444P || f == AV_PIX_FMT_YUVJ440P ||
           f == AV_PIX_FMT_YUVJ411P;
}

/* swscale matrix for a tagged colour space; BT.601 when untagged. */
static int sws_space(enum AVColorSpace cs)
{
    switch (cs) {
    case AVCOL_SPC_BT709: return SWS_CS_ITU709;
    case AVCOL_SPC_FCC: return SWS_CS_FCC;
    case AVCOL_SPC_SMPTE240M: return SWS_CS_SMPTE240M;
    case AVCOL_SPC_BT2020_NCL:
    case AVCOL_SPC_BT2020_CL: return SWS_CS_BT2020;
    default: return SWS_CS_ITU601;
    }
}

/* Convert r->frame into a new r->img. */
static int convert(reader *r)
{
    const AVFrame *f = r->frame;
    const enum AVPixelFormat src = (enum AVPixelFormat)f->format;
    const AVPixFmtDescriptor *d = av_pix_fmt_desc_get(src);
    layout lay;
    int ret;

    if (!d || (d->flags & AV_PIX_FMT_FLAG_HWACCEL) || d->nb_components < 1)
        return cm__error(r->ctx, CM_E_UNSUPPORTED,
                         "%s: %s decoder returned an unusable pixel format; "
                         "convert the file to PNG",
                         r->path, r->label);
    if (f->width <= 0 || f->height <= 0)
        return cm__error(r->ctx, CM_E_CORRUPT, "%s: %s image has no pixels",
                         r->path, r->label);
    if ((uint64_t)f->width * (uint64_t)f->height > r->limits->max_pixels)
        return limit_error(r, (uint64_t)f->width, (uint64_t)f->height);

    snprintf(r->meta->pix_fmt, sizeof(r->meta->pix_fmt), "%s", d->name);
    choose_layout(f, d, r->dec->codec_id == AV_CODEC_ID_GIF, &lay, r->meta);
    if (!sws_isSupportedInput(src) || !sws_isSupportedOutput(lay.dst))
        return cm__error(r->ctx, CM_E_UNSUPPORTED,
                         "%s: cannot convert %s pixels (%s); convert the "
                         "file to PNG",
                         r->path, r->label, d->name);

    /* Output rows padded to ROW_ALIGN, plus one spare row of slack. */
    const size_t bytes = (size_t)(lay.depth / 8);
    size_t row, stride, total;
    if (cm__mul_size((size_t)f->width, (size_t)lay.channels * bytes, &row) ||
        row > (size_t)INT_MAX - ROW_ALIGN)
        return limit_error(r, (uint64_t)f->width, (uint64_t)f->height);
    stride = (row + ROW_ALIGN - 1) / ROW_ALIGN * ROW_ALIGN;
    if (cm__mul_size(stride, (size_t)f->height + 1, &total))
        return limit_error(r, (uint64_t)f->width, (uint64_t)f->height);
    if ((ret = cm__image_alloc(&r->img, f->width, f->height, lay.channels,
                               lay.has_alpha, lay.depth,
                               r->limits->max_pixels)) < 0) {
        if (ret == CM_E_LIMIT)
            return limit_error(r, (uint64_t)f->width, (uint64_t)f->height);
        return cm__error(r->ctx, ret, "%s: cannot allocate a %d x %d image",
                         r->path, f->width, f->height);
    }
    if (!(r->conv = av_malloc(total)))
        return cm__error(r->ctx, CM_E_NOMEM, "%s: out of memory", r->path);

    r->sws = sws_getContext(f->width, f->height, src, f->width, f->height,
                            lay.dst,
                            SWS_BILINEAR | SWS_ACCURATE_RND | SWS_BITEXACT |
                                SWS_FULL_CHR_H_INT | SWS_FULL_CHR_H_INP,
                            NULL, NULL, NULL);
    if (!r->sws)
        return cm__error(r->ctx, CM_E_UNSUPPORTED,
                         "%s: cannot convert %s pixels (%s); convert the "
                         "file to PNG",
                         r->path, r->label, d->name);

    /* Range and matrix: RGB sources have neither. Full range for JPEG's
     * yuvj* and full-range tags, and for untagged grey. */
    const int rgb = (d->flags & (AV_PIX_FMT_FLAG_RGB | AV_PIX_FMT_FLAG_BAYER |
                                 AV_PIX_FMT_FLAG_PAL)) != 0;
    if (!rgb && src != AV_PIX_FMT_XYZ12LE && src != AV_PIX_FMT_XYZ12BE) {
        const int grey =
            d->nb_components - ((d->flags & AV_PIX_FMT_FLAG_ALPHA) ? 1 : 0) == 1;
        int full = f->color_range == AVCOL_RANGE_JPEG || is_yuvj(src) ||
                   (grey && f->color_range != AVCOL_RANGE_MPEG);
        const int *coef = sws_getCoefficients(sws_space(f->colorspace));
        if (sws_setColorspaceDetails(r->sws, coef, full,
                                     sws_getCoefficients(SWS_CS_DEFAULT), 1, 0,
                                     1 << 16, 1 << 16) < 0)
            return cm__error(r->ctx, CM_E_UNSUPPORTED,
                             "%s: cannot convert %s pixels (%s)", r->path,
                             r->label, d->name);
    }

    uint8_t *dst[4] = {r->conv, NULL, NULL, NULL};
    int dst_stride[4] = {(int)stride, 0, 0, 0};
    ret = sws_scale(r->sws, (const uint8_t *const *)f->data, f->linesize, 0,
                    f->height, dst, dst_stride);
    if (ret != f->height)
        return cm__error(r->ctx, CM_E_INTERNAL,
                         "%s: cannot convert %s pixels (%s); convert the "
                         "file to PNG",
                         r->path, r->label, d->name);
    for (int y = 0; y < f->height; y++)
        memcpy(r->img->data + (ptrdiff_t)y * r->img->stride,
               r->conv + (size_t)y * stride, row);
    return CM_OK;
}

static void describe_frame(reader *r)
{
    const AVFrame *f = r->frame;
    av_meta *m = r->meta;
    const char *s;

    if (f->color_range != AVCOL_RANGE_UNSPECIFIED &&
        (s = av_color_range_name(f->color_range)))
        snprintf(m->range, sizeof(m->range), "%s", s);
    if (f->colorspace != AVCOL_SPC_UNSPECIFIED &&
        (s = av_color_space_name(f->colorspace)))
        snprintf(m->space, sizeof(m->space), "%s", s);
    if (f->color_primaries != AVCOL_PRI_UNSPECIFIED &&
        (s = av_color_primaries_name(f->color_primaries)))
        snprintf(m->primaries, sizeof(m->primaries), "%s", s);
    if (f->color_trc != AVCOL_TRC_UNSPECIFIED &&
        (s = av_color_transfer_name(f->color_trc)))
        snprintf(m->transfer, sizeof(m->transfer), "%s", s);
    const AVFrameSideData *icc =
        av_frame_get_side_data(f, AV_FRAME_DATA_ICC_PROFILE);
    if (icc)
        m->icc_bytes = icc->size;
}

static void free_av_meta(void *priv)
{
    free(priv);
}

static int read_av(cm_ctx *ctx, const char *path, FILE *fp,
                   const cm_limits *limits, cm_image **out)
{
    reader r;
    int ret;

    if (!out)
        return cm__error(ctx, CM_E_INVAL, "av read: no output given");
    *out = NULL;
    if (!path || !fp || !limits)
        return cm__error(ctx, CM_E_INVAL, "av read: invalid argument");

    memset(&r, 0, sizeof(r));
    r.ctx = ctx;
    r.path = path;
    r.fp = fp;
    r.limits = limits;
    snprintf(r.label, sizeof(r.label), "image");
    cm__av_log_reset();

    if (!(r.meta = calloc(1, sizeof(*r.meta)))) {
        ret = cm__error(ctx, CM_E_NOMEM, "%s: out of memory", path);
        goto fail;
    }
    if ((ret = identify(&r)) < 0)
        goto fail;
    if ((ret = open_decoder(&r)) < 0)
        goto fail;
    if ((ret = decode_first(&r, ret)) < 0)
        goto fail;
    if ((ret = convert(&r)) < 0)
        goto fail;
    describe_frame(&r);
    ret = cm__image_attach_meta(r.img, &cm__format_av, r.meta);
    r.meta = NULL; /* owned by the image now, or freed by attach */
    if (ret < 0) {
        ret = cm__error(ctx, ret, "%s: out of memory", path);
        goto fail;
    }
    *out = r.img;
    r.img = NULL;
    ret = CM_OK;

fail:
    sws_freeContext(r.sws);
    av_free(r.conv);
    av_frame_free(&r.frame);
    av_packet_free(&r.pkt);
    avcodec_free_context(&r.dec);
    avformat_close_input(&r.fc); /* accepts NULL; leaves the custom pb */
    if (r.pb) {
        av_freep(&r.pb->buffer); /* libav may have replaced our buffer */
        avio_context_free(&r.pb);
    }
    av_dict_free(&r.opts);
    free(r.probe_buf);
    cm_image_free(&r.img);
    free(r.meta);
    return ret;
}

/* ---- info ------------------------------------------------------------- */

static void describe_av(const cm_image *img, cm_image_info *info)
{
    const av_meta *m = img->meta->priv;

    snprintf(info->format, sizeof(info->format), "%s", m->name);
    snprintf(info->color_type, sizeof(info->color_type), "%s", m->color_type);
    info->bit_depth = m->bit_depth;
    info->converted = m->converted;
    if (m->codec[0])
        cm__info_add_tag(info, "codec", "%s", m->codec);
    if (m->pix_fmt[0])
        cm__info_add_tag(info, "pix_fmt", "%s", m->pix_fmt);
    if (m->range[0])
        cm__info_add_tag(info, "color_range", "%s", m->range);
    if (m->space[0])
        cm__info_add_tag(info, "color_space", "%s", m->space);
    if (m->primaries[0])
        cm__info_add_tag(info, "color_primaries", "%s", m->primaries);
    if (m->transfer[0])
        cm__info_add_tag(info, "color_transfer", "%s", m->transfer);
    if (m->icc_bytes)
        cm__info_add_tag(info, "icc_profile", "%lu bytes",
                         (unsigned long)m->icc_bytes);
    if (m->lost[0])
        cm__info_add_tag(info, "dropped_tags", "%s", m->lost);
}

void cm__av_set_lost(cm_image *img, const char *list)
{
    if (img && img->meta && img->meta->format == &cm__format_av && list) {
        av_meta *m = img->meta->priv;
        snprintf(m->lost, sizeof(m->lost), "%s", list);
    }
}

const char *cm__av_lost(const cm_image *img)
{
    if (img && img->meta && img->meta->format == &cm__format_av)
        return ((const av_meta *)img->meta->priv)->lost;
    return "";
}

const cm__format cm__format_av = {
    .name = "av",
    .probe = probe_av,
    .read = read_av,
    .write = NULL, /* read-only: cm_image_write() writes these as PNG */
    .meta_free = free_av_meta,
    .info = describe_av,
};
