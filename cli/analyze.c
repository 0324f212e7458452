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
    free(r->map);
    json_decref(r->layers);
    cli_ledger_clear(r->claim_li);
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

/* An image box-averaged to at most max_width columns, as 8-bit grey or RGB
 * (alpha composited over white, as a viewer shows a cel): *rows (malloc'ed)
 * of *tw x *th x *ch, and the box side *k. */
static int image_rows(const cm_image *img, int max_width, uint8_t **out, int *tw, int *th,
                      int *ch, int *k)
{
    *k = (img->width + max_width - 1) / max_width;
    *tw = img->width / *k, *th = img->height / *k;
    int colour = img->channels >= 3;
    *ch = colour ? 3 : 1;
    if (*tw < 1 || *th < 1)
        return CM_E_INVAL;
    uint8_t *rows = malloc((size_t)*tw * *th * *ch);
    if (!rows)
        return CM_E_NOMEM;
    double maxv = img->bit_depth == 16 ? 65535.0 : 255.0;
    int kk = *k;
    for (int y = 0; y < *th; y++)
        for (int x = 0; x < *tw; x++)
            for (int c = 0; c < *ch; c++) {
                double s = 0;
                for (int j = 0; j < kk; j++) {
                    const uint8_t *row = img->data + (ptrdiff_t)(y * kk + j) * img->stride;
                    for (int i = 0; i < kk; i++) {
                        size_t px = (size_t)(x * kk + i) * img->channels;
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
                rows[((size_t)y * *tw + x) * *ch + c] = (uint8_t)(255.0 * s / (kk * kk) + 0.5);
            }
    *out = rows;
    return CM_OK;
}

static int image_thumb(const cm_image *img, uint8_t **out, size_t *len)
{
    uint8_t *rows;
    int tw, th, ch, k;
    int ret = image_rows(img, THUMB_WIDTH, &rows, &tw, &th, &ch, &k);
    if (ret)
        return ret;
    ret = encode_png(rows, tw, th, ch, out, len);
    free(rows);
    return ret;
}

/* A plane's samples (code values) as 8-bit grey rows. */
static uint8_t *plane_rows(const cm_plane *p)
{
    uint8_t *rows = malloc((size_t)p->width * p->height);
    if (!rows)
        return NULL;
    for (int y = 0; y < p->height; y++)
        for (int x = 0; x < p->width; x++) {
            float v = p->data[y * p->stride + x];
            rows[(size_t)y * p->width + x] = (uint8_t)(v < 0 ? 0 : (v > 255 ? 255 : v + 0.5f));
        }
    return rows;
}

static int plane_thumb(const cm_plane *p, uint8_t **out, size_t *len)
{
    if (!p->data || p->width < 1 || p->height < 1)
        return CM_E_INVAL;
    uint8_t *rows = plane_rows(p);
    if (!rows)
        return CM_E_NOMEM;
    int ret = encode_png(rows, p->width, p->height, 1, out, len);
    free(rows);
    return ret;
}

/* ---- the claim map: where each copy in a mix dominates ------------------ */

/* One colour per claim (strongest first); cells no claim dominates stay
 * grey. Chosen apart for the eye and for common colour blindness. */
static const uint8_t map_colours[CM_MAX_CLAIMS][3] = {
    {230, 159, 0},  {86, 180, 233}, {0, 158, 115}, {240, 228, 66},
    {0, 114, 178},  {213, 94, 0},   {204, 121, 167}, {255, 255, 255},
};

const uint8_t *claim_map_colour(int claim)
{
    return map_colours[claim % CM_MAX_CLAIMS];
}

/* grey rows (ch 1) or RGB (ch 3) of tw x th, a copy of a frame of fw px
 * wide, into RGB dimmed to 40 % with each cell of r's map tinted with its
 * owner's colour and outlined. */
static uint8_t *draw_map(const uint8_t *rows, int tw, int th, int ch, int fw,
                         const cm_verify_result *r)
{
    uint8_t *rgb = malloc((size_t)tw * th * 3);
    if (!rgb)
        return NULL;
    const cm_claim_map *m = &r->map;
    double k = (double)fw / tw; /* frame px per map px */
    for (int y = 0; y < th; y++)
        for (int x = 0; x < tw; x++) {
            int cx = m->cols ? (int)(x * k / m->cell_w) : 0;
            int cy = m->rows ? (int)(y * k / m->cell_h) : 0;
            cx = cx < m->cols ? cx : m->cols - 1;
            cy = cy < m->rows ? cy : m->rows - 1;
            int owner = m->cols ? m->owner[cy * m->cols + cx] : -1;
            int edge = m->cols && ((int)((x + 1) * k / m->cell_w) != (int)(x * k / m->cell_w) ||
                                   (int)((y + 1) * k / m->cell_h) != (int)(y * k / m->cell_h));
            for (int c = 0; c < 3; c++) {
                double v = rows[((size_t)y * tw + x) * ch + (ch == 3 ? c : 0)] * 0.4;
                double tint = owner >= 0 ? map_colours[owner][c] : 128;
                v = edge ? 32 : v + 0.5 * (tint - v) * (owner >= 0 ? 1 : 0.3);
                rgb[((size_t)y * tw + x) * 3 + c] = (uint8_t)(v + 0.5);
            }
        }
    return rgb;
}

int claim_map_png(const cm_image *img, const cm_plane *plane, int fw, const cm_verify_result *r,
                  int max_width, uint8_t **out, size_t *len)
{
    uint8_t *rows = NULL;
    int tw, th, ch = 1, k;
    int ret = CM_OK;
    if (img) {
        ret = image_rows(img, max_width, &rows, &tw, &th, &ch, &k);
        fw = img->width;
    } else if (plane && plane->data && plane->width > 0 && plane->height > 0) {
        tw = plane->width, th = plane->height;
        ret = (rows = plane_rows(plane)) ? CM_OK : CM_E_NOMEM;
    } else {
        ret = CM_E_INVAL;
    }
    if (ret)
        return ret;
    uint8_t *rgb = draw_map(rows, tw, th, ch, fw, r);
    free(rows);
    if (!rgb)
        return CM_E_NOMEM;
    ret = encode_png(rgb, tw, th, 3, out, len);
    free(rgb);
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
    if (cli_ledger_lookup_claims(a->ctx, a->lg, &r->claim, r->claim_li) != EXIT_OK)
        cli_ledger_clear(r->claim_li); /* a ledger that cannot be read names nobody */
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

/* The layers below the analyzer's own (r->claim is layer 0's): on the
 * still img, or on the video at path, each layer's claim; r->layers. */
static int read_layers(analyzer *a, const char *path, const cm_image *img, file_result *r)
{
    int n = a->layers ? a->layers->n : 1;
    if (n < 2)
        return CM_OK;
    cm_verify_result *res = calloc((size_t)n, sizeof(*res));
    if (!res)
        return CM_E_NOMEM;
    res[0] = r->claim;
    int ret = CM_OK;
    for (int i = 1; !ret && i < n; i++) {
        if (img) {
            ret = cm_verifier_image(a->layers->l[i].ver, img, &res[i]);
        } else {
            cm_video_report rep;
            cm_video_verify_params vp = a->vvp;
            vp.limits = a->limits;
            if (!(ret = cm_video_verify(a->ctx, a->layers->l[i].ver, path, &vp, &rep)))
                res[i] = rep.claim;
            cm_video_report_clear(&rep);
        }
    }
    if (!ret)
        r->layers = cli_layers_json(a->ctx, a->layers, res);
    free(res);
    return ret;
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
        r->stopped_early = rep.stopped_early;
        r->width = rep.width;
        r->height = rep.height;
        r->nids = rep.nids;
        r->segments = rep.segments; /* moved */
        r->nsegments = rep.nsegments;
        rep.segments = NULL;
        rep.nsegments = 0;
        if (a->want_thumb && r->claim.marked && rep.thumb.data)
            plane_thumb(&rep.thumb, &r->thumb, &r->thumb_len); /* optional */
        if (a->want_thumb && r->claim.mixed && rep.thumb.data) /* optional */
            claim_map_png(NULL, &rep.thumb, rep.width, &r->claim, 0, &r->map, &r->map_len);
        cm_video_report_clear(&rep);
        if ((ret = read_layers(a, path, NULL, r)))
            return fail(a, r, ret);
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
        if (a->want_thumb && r->claim.mixed) /* optional */
            claim_map_png(img, NULL, 0, &r->claim, THUMB_WIDTH, &r->map, &r->map_len);
        ret = read_layers(a, path, img, r);
        cm_image_free(&img);
        if (ret)
            return fail(a, r, ret);
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
    if (r->kind == FILE_VIDEO)
        json_object_set_new(o, "stopped_at_frame",
                            r->stopped_early ? json_integer(r->frames) : json_null());
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
    json_object_set_new(o, "claims", cli_claims_json(c, r->claim_li));
    json_object_set_new(o, "mixed", json_boolean(c->mixed || r->nids > 1));
    if (r->layers)
        json_object_set_new(o, "layers", json_incref(r->layers));
    if (r->kind == FILE_VIDEO) {
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
            json_object_set_new(so, "claims", cli_claims_json(&s->result, NULL));
            json_array_append_new(segs, so);
        }
        json_object_set_new(o, "segments", segs);
    }
    return o;
}
