/* One file, examined (see analyze.h). */
#include "analyze.h"

#include <errno.h>
#include <png.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Thumbnails on the evidence page: wide enough to recognise a shot, small
 * enough that a page of a thousand hits stays a few tens of MB. */
#define THUMB_WIDTH 240

void file_result_clear(file_result *r)
{
    free(r->segments);
    free(r->thumb);
    memset(r, 0, sizeof(*r));
}

/* ---- thumbnails: a small 8-bit PNG in memory -------------------------- */

typedef struct membuf {
    uint8_t *data;
    size_t len, cap;
    int failed;
} membuf;

static void mem_write(png_structp png, png_bytep data, png_size_t n)
{
    membuf *m = png_get_io_ptr(png);
    if (m->failed)
        return;
    if (m->len + n > m->cap) {
        size_t cap = (m->len + n) * 2;
        uint8_t *p = realloc(m->data, cap);
        if (!p) {
            m->failed = 1;
            return;
        }
        m->data = p;
        m->cap = cap;
    }
    memcpy(m->data + m->len, data, n);
    m->len += n;
}

static void mem_flush(png_structp png)
{
    (void)png;
}

/* rows: w x h, channels 1 or 3, 8-bit. */
static int encode_png(const uint8_t *rows, int w, int h, int channels, uint8_t **out,
                      size_t *len)
{
    membuf m = {0};
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!info) {
        png_destroy_write_struct(&png, NULL);
        return CM_E_NOMEM;
    }
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        free(m.data);
        return CM_E_NOMEM;
    }
    png_set_write_fn(png, &m, mem_write, mem_flush);
    png_set_IHDR(png, info, (png_uint_32)w, (png_uint_32)h, 8,
                 channels == 3 ? PNG_COLOR_TYPE_RGB : PNG_COLOR_TYPE_GRAY, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    for (int y = 0; y < h; y++)
        png_write_row(png, (png_bytep)(rows + (size_t)y * w * channels));
    png_write_end(png, info);
    png_destroy_write_struct(&png, &info);
    if (m.failed) {
        free(m.data);
        return CM_E_NOMEM;
    }
    *out = m.data;
    *len = m.len;
    return CM_OK;
}

/* An image box-averaged to at most THUMB_WIDTH columns, as 8-bit grey or
 * RGB (alpha composited over white, as a viewer shows a cel). */
static int image_thumb(const cm_image *img, uint8_t **out, size_t *len)
{
    int k = (img->width + THUMB_WIDTH - 1) / THUMB_WIDTH;
    int tw = img->width / k, th = img->height / k;
    int colour = img->channels >= 3, ch = colour ? 3 : 1;
    if (tw < 1 || th < 1)
        return CM_E_INVAL;
    uint8_t *rows = malloc((size_t)tw * th * ch);
    if (!rows)
        return CM_E_NOMEM;
    double maxv = img->bit_depth == 16 ? 65535.0 : 255.0;
    for (int y = 0; y < th; y++)
        for (int x = 0; x < tw; x++)
            for (int c = 0; c < ch; c++) {
                double s = 0;
                for (int j = 0; j < k; j++) {
                    const uint8_t *row = img->data + (ptrdiff_t)(y * k + j) * img->stride;
                    for (int i = 0; i < k; i++) {
                        size_t px = (size_t)(x * k + i) * img->channels;
                        double v, a = 1;
                        if (img->bit_depth == 16) {
                            const uint16_t *r16 = (const uint16_t *)row;
                            v = r16[px + c] / maxv;
                            if (img->has_alpha)
                                a = r16[px + img->channels - 1] / maxv;
                        } else {
                            v = row[px + c] / maxv;
                            if (img->has_alpha)
                                a = row[px + img->channels - 1] / maxv;
                        }
                        s += v * a + (1 - a);
                    }
                }
                rows[((size_t)y * tw + x) * ch + c] = (uint8_t)(255.0 * s / (k * k) + 0.5);
            }
    int ret = encode_png(rows, tw, th, ch, out, len);
    free(rows);
    return ret;
}

static int plane_thumb(const cm_plane *p, uint8_t **out, size_t *len)
{
    if (!p->data || p->width < 1 || p->height < 1)
        return CM_E_INVAL;
    uint8_t *rows = malloc((size_t)p->width * p->height);
    if (!rows)
        return CM_E_NOMEM;
    for (int y = 0; y < p->height; y++)
        for (int x = 0; x < p->width; x++) {
            float v = p->data[y * p->stride + x];
            rows[(size_t)y * p->width + x] = (uint8_t)(v < 0 ? 0 : (v > 255 ? 255 : v + 0.5f));
        }
    int ret = encode_png(rows, p->width, p->height, 1, out, len);
    free(rows);
    return ret;
}

/* ---- the examination --------------------------------------------------- */

static void hex(const uint8_t *b, size_t n, char *out)
{
    static const char d[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = d[b[i] >> 4];
        out[2 * i + 1] = d[b[i] & 15];
    }
    out[2 * n] = '\0';
}

static void copy_text(char *dst, size_t size, const char *src)
{
    snprintf(dst, size, "%s", src ? src : "");
}

static int fail(analyzer *a, file_result *r, int status)
{
    r->status = status;
    const char *msg = cm_ctx_last_error(a->ctx);
    copy_text(r->error, sizeof(r->error), msg && *msg ? msg : cm_strerror(status));
    return status;
}

static void ledger_facts(analyzer *a, file_result *r)
{
    if (!a->lg || !r->claim.marked)
        return;
    cm_ledger_row row;
    memset(&row, 0, sizeof(row));
    if (cm_ledger_get(a->ctx, a->lg, r->claim.issue_id, &row) == 1) {
        r->in_ledger = 1;
        r->sig_ok = cm_ledger_row_signature_ok(&row) == 1;
        copy_text(r->recipient, sizeof(r->recipient), row.recipient);
        copy_text(r->asset, sizeof(r->asset), row.asset);
        copy_text(r->stamped_at, sizeof(r->stamped_at), row.stamped_at);
    }
    cm_ledger_row_clear(&row);
}

int analyze_file(analyzer *a, const char *path, file_result *r)
{
    memset(r, 0, sizeof(*r));
    copy_text(r->path, sizeof(r->path), path);
    cm_ctx_clear(a->ctx);
    struct stat st;
    if (stat(path, &st) != 0) {
        cm_ctx_clear(a->ctx);
        snprintf(r->error, sizeof(r->error), "%s: cannot read: %s", path, strerror(errno));
        r->status = CM_E_IO;
        return r->status;
    }
    r->size = (uint64_t)st.st_size;
    r->mtime_ns = cli_mtime_ns(&st);
    if (a->want_hash) {
        uint8_t h[CM_LEDGER_HASH_BYTES];
        int ret = cm_sha256_file(a->ctx, path, h, NULL);
        if (ret)
            return fail(a, r, ret);
        hex(h, sizeof(h), r->sha256);
    }
    cm_media_kind kind;
    int ret = cm_media_probe(a->ctx, path, &kind);
    if (ret)
        return fail(a, r, ret);
    if (kind == CM_MEDIA_UNKNOWN) {
        r->kind = FILE_OTHER;
        return CM_OK;
    }
    if (kind == CM_MEDIA_VIDEO) {
        r->kind = FILE_VIDEO;
        copy_text(r->type, sizeof(r->type), "video");
        cm_video_report rep;
        cm_video_verify_params vp = a->vvp;
        vp.limits = a->limits;
        vp.thumb_width = a->want_thumb ? THUMB_WIDTH : 0;
        if ((ret = cm_video_verify(a->ctx, a->ver, path, &vp, &rep)))
            return fail(a, r, ret);
        r->claim = rep.claim;
        r->frames = rep.frames;
        r->width = rep.width;
        r->height = rep.height;
        r->nids = rep.nids;
        r->segments = rep.segments; /* moved */
        r->nsegments = rep.nsegments;
        rep.segments = NULL;
        rep.nsegments = 0;
        if (a->want_thumb && r->claim.marked && rep.thumb.data)
            plane_thumb(&rep.thumb, &r->thumb, &r->thumb_len); /* optional */
        cm_video_report_clear(&rep);
    } else {
        r->kind = FILE_STILL;
        cm_image *img = NULL;
        if ((ret = cm_verify_still(a->ctx, a->ver, path, &a->limits, &r->claim, &img)))
            return fail(a, r, ret);
        cm_image_info info;
        if (!cm_image_get_info(img, &info))
            copy_text(r->type, sizeof(r->type), info.format);
        r->frames = 1;
        r->width = img->width;
        r->height = img->height;
        if (a->want_thumb && r->claim.marked)
            image_thumb(img, &r->thumb, &r->thumb_len); /* optional */
        cm_image_free(&img);
    }
    ledger_facts(a, r);
    return CM_OK;
}

/* ---- JSON -------------------------------------------------------------- */

static json_t *str_or_null(const char *s)
{
    return s && *s ? json_string(s) : json_null();
}

static json_t *id_or_null(int marked, uint64_t id)
{
    char hexid[17];
    if (!marked)
        return json_null();
    cli_format_id(id, hexid);
    return json_string(hexid);
}

json_t *file_result_json(const file_result *r)
{
    static const char *const kinds[] = {"other", "still", "video"};
    json_t *o = json_object();
    const cm_verify_result *c = &r->claim;
    json_object_set_new(o, "schema", json_string("celmark.scan/1"));
    json_object_set_new(o, "path", json_string(r->path));
    json_object_set_new(o, "size", json_integer((json_int_t)r->size));
    json_object_set_new(o, "mtime_ns", json_integer(r->mtime_ns));
    json_object_set_new(o, "sha256", str_or_null(r->sha256));
    json_object_set_new(o, "kind", json_string(kinds[r->kind]));
    json_object_set_new(o, "type", str_or_null(r->type));
    if (r->status) {
        json_object_set_new(o, "error", json_string(r->error));
        return o;
    }
    json_object_set_new(o, "frames", json_integer(r->frames));
    json_object_set_new(o, "marked", json_boolean(c->marked));
    json_object_set_new(o, "issue_id", id_or_null(c->marked, c->issue_id));
    json_object_set_new(o, "recipient", str_or_null(r->in_ledger ? r->recipient : NULL));
    json_object_set_new(o, "asset", str_or_null(r->in_ledger ? r->asset : NULL));
    json_object_set_new(o, "stamped_at", str_or_null(r->in_ledger ? r->stamped_at : NULL));
    if (c->marked)
        json_object_set_new(o, "ledger_row",
                            json_string(!r->in_ledger ? "not in ledger"
                                                      : (r->sig_ok ? "signature ok"
                                                                   : "signature BAD")));
    json_object_set_new(o, "score", json_real(c->score));
    json_object_set_new(o, "fpr", json_real(c->fpr));
    json_object_set_new(o, "scale", json_real(c->scale));
    json_object_set_new(o, "rotation_deg", json_real(c->rotation_deg));
    json_object_set_new(o, "flipped", json_boolean(c->flipped));
    if (r->kind == FILE_VIDEO) {
        json_object_set_new(o, "mixed", json_boolean(r->nids > 1));
        json_t *segs = json_array();
        for (size_t i = 0; i < r->nsegments; i++) {
            const cm_video_segment *s = &r->segments[i];
            json_t *so = json_object();
            json_object_set_new(so, "start", json_real(s->start));
            json_object_set_new(so, "end", json_real(s->end));
            json_object_set_new(so, "start_tc", json_string(s->start_tc));
            json_object_set_new(so, "end_tc", json_string(s->end_tc));
            json_object_set_new(so, "frames", json_integer(s->frames));
            json_object_set_new(so, "marked", json_boolean(s->result.marked));
            json_object_set_new(so, "issue_id", id_or_null(s->result.marked, s->result.issue_id));
            json_object_set_new(so, "score", json_real(s->result.score));
            json_object_set_new(so, "fpr", json_real(s->result.fpr));
            json_array_append_new(segs, so);
        }
        json_object_set_new(o, "segments", segs);
    }
    return o;
}
