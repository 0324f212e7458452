/*
 * The evidence report (report.h): one HTML page an investigator can hand
 * on. Layout:
 *
 *   header     title, generated-at (UTC), tool version, key fingerprint,
 *              ledger, claim threshold, counts
 *   summary    per recipient: the issue ids found, their assets, the files
 *   hits       per marked file: thumbnail, path, claim, score, fpr, sync,
 *              ledger signature; for a video a timeline
 *                |== A 00:00-00:02 ==|== B 00:02-00:04 ==|.. none ..|
 *              (one block per segment, width proportional to its frames,
 *              a colour per issue id, grey where nothing is claimed)
 *   unmarked   files examined where no mark was found
 *   unreadable files that could not be read, with the error
 *
 * Safety: no script, no external resource (the CSP meta tag forbids both;
 * thumbnails are data: URIs); every string that comes from a file or the
 * ledger goes through cli_put_escaped. Determinism: results are sorted by
 * path and ids by value, numbers printed in the C locale.
 */
#include "report.h"

#include "outfile.h"

#include <math.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

/* Colours for issue ids in timelines and the summary, in the order of the
 * sorted ids (ColorBrewer "Set2"/"Dark2"-like: distinguishable, print well). */
static const char *const palette[] = {
    "#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e",
    "#e6ab02", "#a6761d", "#1f78b4", "#b2df8a", "#fb9a99",
};
#define NPALETTE (sizeof(palette) / sizeof(palette[0]))
#define GREY "#c8c8c8"

/* One distinct issue id seen in the results, with what the ledger says. */
typedef struct id_info {
    uint64_t id;
    int found, sig_ok;
    char *recipient, *asset, *stamped_at; /* owned; NULL when not found */
} id_info;

typedef struct report {
    FILE *f;
    cm_ctx *ctx;
    cm_ledger *lg;
    const report_info *info;
    const file_result **res; /* sorted by path */
    size_t n;
    id_info *ids; /* sorted by id */
    size_t nids;
} report;

static void esc(report *rp, const char *s)
{
    cli_put_escaped(rp->f, s);
}

static int cmp_path(const void *a, const void *b)
{
    const file_result *x = *(const file_result *const *)a, *y = *(const file_result *const *)b;
    int c = strcmp(x->path, y->path);
    /* ties (the same path twice): keep a fixed order by content */
    if (!c)
        c = (x->claim.issue_id > y->claim.issue_id) - (x->claim.issue_id < y->claim.issue_id);
    return c;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* Read, and media (scan hands over non-media as FILE_OTHER: not shown). */
static int is_media(const file_result *r)
{
    return r->status == CM_OK && r->kind != FILE_OTHER;
}

static int is_marked(const file_result *r)
{
    if (!is_media(r))
        return 0;
    if (r->claim.marked)
        return 1;
    for (size_t i = 0; i < r->nsegments; i++)
        if (r->segments[i].result.marked)
            return 1;
    return 0;
}

static const id_info *find_id(const report *rp, uint64_t id)
{
    size_t lo = 0, hi = rp->nids;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (rp->ids[mid].id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < rp->nids && rp->ids[lo].id == id ? &rp->ids[lo] : NULL;
}

static const char *id_colour(const report *rp, uint64_t id)
{
    const id_info *ii = find_id(rp, id);
    return ii ? palette[(size_t)(ii - rp->ids) % NPALETTE] : GREY;
}

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

/* Collect the distinct ids claimed by files and segments, and what the
 * ledger knows about each: the file's own lookup for its claim, else a
 * lookup in lg. Returns 0 or -1 (out of memory). */
static int collect_ids(report *rp)
{
    size_t cap = 0, n = 0;
    uint64_t *all = NULL;
    for (size_t i = 0; i < rp->n; i++) {
        const file_result *r = rp->res[i];
        if (r->status != CM_OK)
            continue;
        size_t need = n + (size_t)CM_MAX_CLAIMS * (1 + r->nsegments);
        if (need > cap) {
            cap = need * 2;
            uint64_t *p = realloc(all, cap * sizeof(*all));
            if (!p) {
                free(all);
                return -1;
            }
            all = p;
        }
        for (int c = 0; c < r->claim.nclaims; c++) /* every copy in a mix */
            all[n++] = r->claim.claims[c].issue_id;
        for (size_t s = 0; s < r->nsegments; s++)
            for (int c = 0; c < r->segments[s].result.nclaims; c++)
                all[n++] = r->segments[s].result.claims[c].issue_id;
    }
    if (n)
        qsort(all, n, sizeof(*all), cmp_u64);
    size_t u = 0;
    for (size_t i = 0; i < n; i++)
        if (!u || all[u - 1] != all[i])
            all[u++] = all[i];
    rp->ids = u ? calloc(u, sizeof(*rp->ids)) : NULL;
    if (u && !rp->ids) {
        free(all);
        return -1;
    }
    rp->nids = u;
    for (size_t k = 0; k < u; k++) {
        id_info *ii = &rp->ids[k];
        ii->id = all[k];
        const file_result *own = NULL;
        for (size_t i = 0; i < rp->n && !own; i++)
            if (rp->res[i]->status == CM_OK && rp->res[i]->claim.marked &&
                rp->res[i]->claim.issue_id == ii->id && rp->res[i]->in_ledger)
                own = rp->res[i];
        if (own) {
            ii->found = 1;
            ii->sig_ok = own->sig_ok;
            ii->recipient = strdup(own->recipient);
            ii->asset = strdup(own->asset);
            ii->stamped_at = strdup(own->stamped_at);
        } else if (rp->lg) {
            cm_ledger_row row;
            memset(&row, 0, sizeof(row));
            if (cm_ledger_get(rp->ctx, rp->lg, ii->id, &row) == 1) {
                ii->found = 1;
                ii->sig_ok = cm_ledger_row_signature_ok(&row) == 1;
                ii->recipient = dup_or_null(row.recipient);
                ii->asset = dup_or_null(row.asset);
                ii->stamped_at = dup_or_null(row.stamped_at);
            }
            cm_ledger_row_clear(&row);
        }
        if (ii->found && (!ii->recipient || !ii->asset || !ii->stamped_at)) {
            free(all);
            return -1;
        }
    }
    free(all);
    return 0;
}

static void free_ids(report *rp)
{
    for (size_t k = 0; k < rp->nids; k++) {
        free(rp->ids[k].recipient);
        free(rp->ids[k].asset);
        free(rp->ids[k].stamped_at);
    }
    free(rp->ids);
    rp->ids = NULL;
    rp->nids = 0;
}

static const char css[] =
    "body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222;background:#fafafa}"
    "h1{font-size:22px;margin:0 0 8px}h2{font-size:18px;margin:28px 0 8px;border-bottom:1px "
    "solid #ccc}h3{font-size:15px;margin:0 0 8px;word-break:break-all}"
    "code{font:13px ui-monospace,monospace;word-break:break-all}"
    "table{border-collapse:collapse;margin:4px 0}th,td{text-align:left;vertical-align:top;"
    "padding:3px 8px;border-bottom:1px solid #e2e2e2}th{font-weight:600}"
    "dl.meta{display:grid;grid-template-columns:max-content auto;gap:2px 12px;margin:0}"
    "dl.meta dt{font-weight:600}dl.meta dd{margin:0}"
    "tr.recipient th{background:#eef;padding-top:8px}"
    ".swatch{display:inline-block;width:10px;height:10px;margin-right:6px;border-radius:2px}"
    "article.hit{background:#fff;border:1px solid #ddd;border-radius:6px;padding:12px;"
    "margin:12px 0}"
    ".row{display:flex;gap:16px;align-items:flex-start}"
    ".thumb img{max-width:320px;max-height:240px;border:1px solid #ccc;background:#eee}"
    ".thumb .none{width:160px;padding:40px 0;text-align:center;color:#888;background:#eee}"
    ".timeline{display:flex;height:44px;margin:10px 0 4px;border:1px solid #999;"
    "border-radius:3px;overflow:hidden}"
    ".seg{min-width:2px;flex-basis:0;overflow:hidden;white-space:nowrap;"
    "text-overflow:ellipsis;font-size:11px;line-height:14px;padding:1px 3px;color:#fff;"
    "border-right:1px solid #fff;box-sizing:border-box}"
    ".seg.none{color:#333}"
    ".bad{color:#b00;font-weight:600}.ok{color:#070}"
    "footer{margin-top:32px;color:#666;font-size:12px}";

static void put_u64(report *rp, const char *label, uint64_t v)
{
    fprintf(rp->f, "<tr><th>%s</th><td>%llu</td></tr>\n", label, (unsigned long long)v);
}

static void put_id(report *rp, uint64_t id)
{
    char hex[17];
    cli_format_id(id, hex);
    fprintf(rp->f, "<code>%s</code>", hex);
}

static void header(report *rp, const char *title)
{
    const report_info *in = rp->info;
    char when[32] = "";
    struct tm tm;
    time_t t = in->generated_at;
    if (gmtime_r(&t, &tm))
        strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
    FILE *f = rp->f;
    fputs("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
          "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
          "img-src data:; style-src 'unsafe-inline'\">\n"
          "<meta name=\"referrer\" content=\"no-referrer\">\n"
          "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>",
          f);
    esc(rp, title);
    fprintf(f, "</title>\n<style>%s</style>\n</head>\n<body>\n<header>\n<h1>", css);
    esc(rp, title);
    fputs("</h1>\n<dl class=\"meta\">\n", f);
    fprintf(f, "<dt>generated at</dt><dd class=\"generated-at\">%s</dd>\n", when);
    fputs("<dt>tool</dt><dd>celmark ", f);
    esc(rp, cm_version());
    fputs("</dd>\n<dt>key fingerprint</dt><dd><code>", f);
    esc(rp, in->key_fingerprint ? in->key_fingerprint : "(not given)");
    fputs("</code></dd>\n<dt>ledger</dt><dd>", f);
    if (in->ledger_path) {
        fputs("<code>", f);
        esc(rp, in->ledger_path);
        fputs("</code>", f);
    } else {
        fputs("none (issue ids are not resolved to recipients)", f);
    }
    fputs("</dd>\n", f);
    if (in->max_fpr > 0)
        fprintf(f, "<dt>claim threshold</dt><dd>fpr &le; %.3g</dd>\n", in->max_fpr);
    fputs("</dl>\n</header>\n", f);

    size_t marked = 0, unmarked = 0;
    for (size_t i = 0; i < rp->n; i++) {
        if (is_marked(rp->res[i]))
            marked++;
        else if (is_media(rp->res[i]))
            unmarked++;
    }
    fputs("<section id=\"counts\">\n<h2>Files</h2>\n<table class=\"counts\">\n", f);
    put_u64(rp, "files scanned", in->files_scanned);
    put_u64(rp, "stills", in->stills);
    put_u64(rp, "videos", in->videos);
    put_u64(rp, "marked", marked);
    put_u64(rp, "no mark found", unmarked);
    put_u64(rp, "unreadable", in->unreadable);
    put_u64(rp, "skipped (not media)", in->skipped);
    fputs("</table>\n</section>\n", f);
}

/* The recipient of an id, or NULL. */
static const char *recipient_of(const report *rp, uint64_t id)
{
    const id_info *ii = find_id(rp, id);
    return ii && ii->found ? ii->recipient : NULL;
}

/* One (id, file) pair for the summary. */
typedef struct pair {
    const id_info *id;
    const file_result *r;
} pair;

static int cmp_pair(const void *a, const void *b)
{
    const pair *x = a, *y = b;
    /* known recipients first, by name; then by id; then by path */
    if (x->id->found != y->id->found)
        return x->id->found ? -1 : 1;
    if (x->id->found) {
        int c = strcmp(x->id->recipient, y->id->recipient);
        if (c)
            return c;
    }
    if (x->id->id != y->id->id)
        return x->id->id < y->id->id ? -1 : 1;
    return strcmp(x->r->path, y->r->path);
}

static int summary(report *rp)
{
    FILE *f = rp->f;
    size_t cap = 0, n = 0;
    for (size_t i = 0; i < rp->n; i++)
        if (rp->res[i]->status == CM_OK)
            cap += 1 + rp->res[i]->nsegments;
    pair *pairs = cap ? calloc(cap, sizeof(*pairs)) : NULL;
    if (cap && !pairs)
        return -1;
    for (size_t i = 0; i < rp->n; i++) {
        const file_result *r = rp->res[i];
        if (r->status != CM_OK)
            continue;
        size_t first = n;
        for (size_t s = 0; s <= r->nsegments; s++) {
            const cm_verify_result *v = s < r->nsegments ? &r->segments[s].result : &r->claim;
            if (!v->marked)
                continue;
            int dup = 0;
            for (size_t k = first; k < n; k++)
                dup |= pairs[k].id->id == v->issue_id;
            if (!dup) {
                pairs[n].id = find_id(rp, v->issue_id);
                pairs[n].r = r;
                n++;
            }
        }
    }
    if (n)
        qsort(pairs, n, sizeof(*pairs), cmp_pair);

    fputs("<section id=\"summary\">\n<h2>Marked files by recipient</h2>\n", f);
    if (!n) {
        fputs("<p class=\"nohits\">No file carries a mark.</p>\n</section>\n", f);
        free(pairs);
        return 0;
    }
    fputs("<table class=\"summary\">\n<tr><th>issue id</th><th>asset</th><th>stamped at</th>"
          "<th>ledger row</th><th>files</th></tr>\n",
          f);
    for (size_t i = 0; i < n;) {
        /* one recipient group: [i, g) */
        size_t g = i + 1;
        while (g < n && pairs[g].id->found == pairs[i].id->found &&
               (!pairs[i].id->found || !strcmp(pairs[g].id->recipient, pairs[i].id->recipient)))
            g++;
        fputs("<tr class=\"recipient\"><th colspan=\"5\">", f);
        if (pairs[i].id->found) {
            fputs("recipient: <span class=\"name\">", f);
            esc(rp, pairs[i].id->recipient);
            fputs("</span>", f);
        } else {
            fputs(rp->lg ? "not in ledger" : "recipient unknown (no ledger)", f);
        }
        /* distinct files in the group (pairs are sorted by id then path) */
        size_t files = 0;
        for (size_t k = i; k < g; k++) {
            int seen = 0;
            for (size_t j = i; j < k && !seen; j++)
                seen = pairs[j].r == pairs[k].r;
            files += !seen;
        }
        fprintf(f, " &mdash; %zu file%s</th></tr>\n", files, files == 1 ? "" : "s");
        for (size_t k = i; k < g;) {
            size_t e = k + 1;
            while (e < g && pairs[e].id == pairs[k].id)
                e++;
            const id_info *ii = pairs[k].id;
            fprintf(f,
                    "<tr class=\"issue\"><td><span class=\"swatch\" style=\"background:%s\">"
                    "</span>",
                    id_colour(rp, ii->id));
            put_id(rp, ii->id);
            fputs("</td><td class=\"asset\">", f);
            esc(rp, ii->found ? ii->asset : "");
            fputs("</td><td>", f);
            esc(rp, ii->found ? ii->stamped_at : "");
            fputs("</td><td>", f);
            if (ii->found)
                fputs(ii->sig_ok ? "<span class=\"ok\">signature ok</span>"
                                 : "<span class=\"bad\">signature BAD</span>",
                      f);
            else
                fputs(rp->lg ? "not in ledger" : "no ledger", f);
            fputs("</td><td>", f);
            for (size_t j = k; j < e; j++) {
                fputs(j > k ? "<br>" : "", f);
                fputs("<code>", f);
                esc(rp, pairs[j].r->path);
                fputs("</code>", f);
            }
            fputs("</td></tr>\n", f);
            k = e;
        }
        i = g;
    }
    fputs("</table>\n</section>\n", f);
    free(pairs);
    return 0;
}

static void field(report *rp, const char *name, const char *value)
{
    fprintf(rp->f, "<tr><th>%s</th><td>", name);
    esc(rp, value);
    fputs("</td></tr>\n", rp->f);
}

static void field_code(report *rp, const char *name, const char *value)
{
    fprintf(rp->f, "<tr><th>%s</th><td><code>", name);
    esc(rp, value);
    fputs("</code></td></tr>\n", rp->f);
}

static const char *source_name(cm_id_source s)
{
    return s == CM_ID_BLIND ? "blind decode" : (s == CM_ID_CANDIDATE ? "candidate" : "none");
}

/* PNG bytes as an <img> with a data: URI (PNG only: anything else is not
 * shown; what: "thumbnail", "claim map"). Returns -1 when out of memory. */
static int png_image(report *rp, const uint8_t *png, size_t png_len, const char *what)
{
    static const uint8_t png_sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    FILE *f = rp->f;
    fputs("<div class=\"thumb\">", f);
    if (!png || png_len < 8 || memcmp(png, png_sig, 8) != 0 ||
        png_len > (size_t)INT32_MAX / 4 * 3) {
        fprintf(f, "<div class=\"none\">no %s</div></div>\n", what);
        return 0;
    }
    size_t out_len = 4 * ((png_len + 2) / 3) + 1;
    unsigned char *b64 = malloc(out_len);
    if (!b64)
        return -1;
    int len = EVP_EncodeBlock(b64, png, (int)png_len);
    fprintf(f, "<img alt=\"%s\" src=\"data:image/png;base64,", what);
    fwrite(b64, 1, (size_t)(len > 0 ? len : 0), f);
    fputs("\"></div>\n", f);
    free(b64);
    return 0;
}

/* Every copy found in a mixed frame: its colour on the claim map, id,
 * recipient, share of the frame, score and fpr. */
static void claims_table(report *rp, const cm_verify_result *c)
{
    FILE *f = rp->f;
    fputs("<table class=\"segments claims\">\n<tr><th></th><th>issue id</th><th>recipient</th>"
          "<th>share of the frame</th><th>score (z)</th><th>fpr</th></tr>\n",
          f);
    for (int i = 0; i < c->nclaims; i++) {
        const cm_claim *k = &c->claims[i];
        const uint8_t *rgb = claim_map_colour(i);
        fprintf(f,
                "<tr class=\"claim\"><td><span class=\"swatch\" "
                "style=\"background:#%02x%02x%02x\"></span></td><td>",
                rgb[0], rgb[1], rgb[2]);
        put_id(rp, k->issue_id);
        fputs("</td><td>", f);
        const char *who = recipient_of(rp, k->issue_id);
        esc(rp, who ? who : (rp->lg ? "not in ledger" : "unknown (no ledger)"));
        fprintf(f, "</td><td>%.0f %%</td><td>%.2f</td><td>%.3g</td></tr>\n", 100 * k->share,
                k->score, k->fpr);
    }
    fputs("</table>\n", f);
}

static void segment_label(report *rp, const cm_video_segment *s)
{
    const char *who = s->result.marked ? recipient_of(rp, s->result.issue_id) : NULL;
    esc(rp, s->start_tc);
    fputs("&ndash;", rp->f);
    esc(rp, s->end_tc);
    fputs(" ", rp->f);
    if (!s->result.marked) {
        fputs("no mark", rp->f);
        return;
    }
    char hex[17];
    cli_format_id(s->result.issue_id, hex);
    fputs(hex, rp->f);
    if (who) {
        fputs(" ", rp->f);
        esc(rp, who);
    }
}

static void timeline(report *rp, const file_result *r)
{
    FILE *f = rp->f;
    fputs("<div class=\"timeline\">", f);
    for (size_t i = 0; i < r->nsegments; i++) {
        const cm_video_segment *s = &r->segments[i];
        int m = s->result.marked;
        long long grow = s->frames > 0 ? (long long)s->frames : 1;
        fprintf(f, "<div class=\"seg%s\" style=\"flex-grow:%lld;background:%s\" title=\"",
                m ? "" : " none", grow, m ? id_colour(rp, s->result.issue_id) : GREY);
        segment_label(rp, s);
        fputs("\">", f);
        esc(rp, s->start_tc);
        fputs("<br>", f);
        if (m) {
            char hex[17];
            cli_format_id(s->result.issue_id, hex);
            const char *who = recipient_of(rp, s->result.issue_id);
            if (who)
                esc(rp, who);
            else
                fputs(hex, f);
        } else {
            fputs("no mark", f);
        }
        fputs("</div>", f);
    }
    fputs("</div>\n<table class=\"segments\">\n<tr><th></th><th>from</th><th>to</th>"
          "<th>frames</th><th>issue id</th><th>recipient</th><th>score (z)</th><th>fpr</th>"
          "</tr>\n",
          f);
    for (size_t i = 0; i < r->nsegments; i++) {
        const cm_video_segment *s = &r->segments[i];
        const cm_verify_result *v = &s->result;
        fprintf(f,
                "<tr class=\"segment\"><td><span class=\"swatch\" style=\"background:%s\">"
                "</span></td><td>",
                v->marked ? id_colour(rp, v->issue_id) : GREY);
        esc(rp, s->start_tc);
        fputs("</td><td>", f);
        esc(rp, s->end_tc);
        fprintf(f, "</td><td>%lld&ndash;%lld</td><td>", (long long)s->first_frame,
                (long long)(s->first_frame + s->frames - 1));
        if (v->marked)
            put_id(rp, v->issue_id);
        else
            fputs("none", f);
        fputs("</td><td>", f);
        const char *who = v->marked ? recipient_of(rp, v->issue_id) : NULL;
        esc(rp, who ? who : "");
        fprintf(f, "</td><td>%.2f</td><td>%.3g</td></tr>\n", v->score, v->fpr);
    }
    fputs("</table>\n", f);
}

/* The layers of the subcontracting chain found in the file (verify's
 * layers: the studio's copy, then each delegate's). */
static void layers_table(report *rp, const json_t *layers)
{
    FILE *f = rp->f;
    fputs("<table class=\"segments layers\">\n<tr><th>layer</th><th>stamped by</th>"
          "<th>issue id</th><th>recipient</th><th>ledger row</th><th>score (z)</th>"
          "<th>fpr</th></tr>\n",
          f);
    for (size_t i = 0; i < json_array_size(layers); i++) {
        const json_t *o = json_array_get(layers, i);
        const char *del = json_string_value(json_object_get(o, "delegate"));
        const char *who = json_string_value(json_object_get(o, "recipient"));
        const char *row = json_string_value(json_object_get(o, "ledger_row"));
        fprintf(f, "<tr class=\"layer\"><td>%lld</td><td>",
                (long long)json_integer_value(json_object_get(o, "layer")));
        esc(rp, del ? del : "the studio");
        fputs("</td><td><code>", f);
        esc(rp, json_string_value(json_object_get(o, "issue_id")));
        fputs("</code></td><td>", f);
        esc(rp, who ? who : "");
        fputs("</td><td>", f);
        esc(rp, row ? row : "no ledger given");
        fprintf(f, "</td><td>%.2f</td><td>%.3g</td></tr>\n",
                json_real_value(json_object_get(o, "score")),
                json_real_value(json_object_get(o, "fpr")));
    }
    fputs("</table>\n", f);
}

static int hit(report *rp, const file_result *r, size_t index)
{
    FILE *f = rp->f;
    const cm_verify_result *c = &r->claim;
    char buf[128];
    fprintf(f, "<article class=\"hit\" id=\"hit-%zu\">\n<h3><code>", index);
    esc(rp, r->path);
    fputs("</code></h3>\n<div class=\"row\">\n", f);
    if (png_image(rp, r->thumb, r->thumb_len, "thumbnail"))
        return -1;
    if (c->mixed && png_image(rp, r->map, r->map_len, "claim map"))
        return -1;
    fputs("<table class=\"fields\">\n", f);
    field_code(rp, "path", r->path);
    field(rp, "type", r->type[0] ? r->type : (r->kind == FILE_VIDEO ? "video" : "still"));
    snprintf(buf, sizeof(buf), "%llu bytes", (unsigned long long)r->size);
    field(rp, "size", buf);
    if (r->width > 0 && r->height > 0) {
        snprintf(buf, sizeof(buf), "%d &times; %d", r->width, r->height);
        fprintf(f, "<tr><th>dimensions</th><td>%s</td></tr>\n", buf);
    }
    if (r->kind == FILE_VIDEO) {
        snprintf(buf, sizeof(buf), "%lld", (long long)r->frames);
        field(rp, "frames", buf);
    }
    if (r->sha256[0])
        field_code(rp, "sha256", r->sha256);
    const char *who = NULL, *asset = NULL, *when = NULL;
    int in_ledger = 0, sig_ok = 0;
    if (c->marked && r->in_ledger) {
        who = r->recipient, asset = r->asset, when = r->stamped_at;
        in_ledger = 1, sig_ok = r->sig_ok;
    } else if (c->marked) {
        const id_info *ii = find_id(rp, c->issue_id);
        if (ii && ii->found)
            who = ii->recipient, asset = ii->asset, when = ii->stamped_at, in_ledger = 1,
            sig_ok = ii->sig_ok;
    }
    fputs("<tr><th>recipient</th><td class=\"recipient\">", f);
    if (who)
        esc(rp, who);
    else
        fputs(!c->marked ? "&mdash;" : (rp->lg ? "not in ledger" : "unknown (no ledger)"), f);
    fputs("</td></tr>\n", f);
    field(rp, "asset", asset ? asset : "");
    field(rp, "stamped at", when ? when : "");
    fputs("<tr><th>issue id</th><td>", f);
    if (c->marked) {
        fprintf(f, "<span class=\"swatch\" style=\"background:%s\"></span>",
                id_colour(rp, c->issue_id));
        put_id(rp, c->issue_id);
    } else {
        fputs("none for the whole file (see segments)", f);
    }
    fputs("</td></tr>\n", f);
    field(rp, "found by", source_name(c->source));
    snprintf(buf, sizeof(buf), "%.2f", c->score);
    field(rp, "score (z)", buf);
    snprintf(buf, sizeof(buf), "%.3g", c->fpr);
    field(rp, "false-positive probability", buf);
    /* no "-0.00" for a rotation of minus almost nothing */
    double rot = fabs(c->rotation_deg) < 0.005 ? 0.0 : c->rotation_deg;
    snprintf(buf, sizeof(buf), "scale %.3f, rotation %.2f&deg;, %s", c->scale, rot,
             c->flipped ? "flipped" : "not flipped");
    fprintf(f, "<tr><th>sync found</th><td>%s</td></tr>\n", buf);
    fputs("<tr><th>ledger row</th><td>", f);
    if (!c->marked)
        fputs("&mdash;", f);
    else if (in_ledger)
        fputs(sig_ok ? "<span class=\"ok\">signature ok</span>"
                     : "<span class=\"bad\">signature BAD</span>",
              f);
    else
        fputs(rp->lg ? "<span class=\"bad\">not in ledger</span>" : "no ledger given", f);
    fputs("</td></tr>\n", f);
    if (r->kind == FILE_VIDEO && r->nids > 1)
        fputs("<tr><th>mixed</th><td><span class=\"bad\">yes: segments claim several issue "
              "ids</span></td></tr>\n",
              f);
    else if (c->mixed)
        fprintf(f, "<tr><th>mixed</th><td><span class=\"bad\">yes: %d copies in the frame "
                   "(see the claim map)</span></td></tr>\n",
                c->nclaims);
    else if (r->kind == FILE_VIDEO)
        fputs("<tr><th>mixed</th><td>no</td></tr>\n", f);
    fputs("</table>\n</div>\n", f);
    if (c->mixed)
        claims_table(rp, c);
    if (r->layers && json_array_size(r->layers))
        layers_table(rp, r->layers);
    if (r->kind == FILE_VIDEO && r->nsegments)
        timeline(rp, r);
    fputs("</article>\n", f);
    return 0;
}

static void unmarked(report *rp)
{
    FILE *f = rp->f;
    size_t n = 0;
    for (size_t i = 0; i < rp->n; i++)
        n += is_media(rp->res[i]) && !is_marked(rp->res[i]);
    fputs("<section id=\"unmarked\">\n<h2>No mark found</h2>\n", f);
    if (!n) {
        fputs("<p>None.</p>\n</section>\n", f);
        return;
    }
    fputs("<table class=\"unmarked\">\n<tr><th>path</th><th>type</th><th>frames</th>"
          "<th>best score (z)</th><th>fpr</th></tr>\n",
          f);
    for (size_t i = 0; i < rp->n; i++) {
        const file_result *r = rp->res[i];
        if (!is_media(r) || is_marked(r))
            continue;
        fputs("<tr class=\"unmarked\"><td><code>", f);
        esc(rp, r->path);
        fputs("</code></td><td>", f);
        esc(rp, r->type[0] ? r->type : (r->kind == FILE_VIDEO ? "video" : "still"));
        fprintf(f, "</td><td>%lld</td><td>%.2f</td><td>%.3g</td></tr>\n", (long long)r->frames,
                r->claim.score, r->claim.fpr);
    }
    fputs("</table>\n</section>\n", f);
}

static void unreadable(report *rp)
{
    FILE *f = rp->f;
    size_t n = 0;
    for (size_t i = 0; i < rp->n; i++)
        n += rp->res[i]->status != CM_OK;
    fputs("<section id=\"unreadable\">\n<h2>Unreadable files</h2>\n", f);
    if (!n) {
        fputs("<p>None.</p>\n</section>\n", f);
        return;
    }
    fputs("<table class=\"unreadable\">\n<tr><th>path</th><th>error</th></tr>\n", f);
    for (size_t i = 0; i < rp->n; i++) {
        const file_result *r = rp->res[i];
        if (r->status == CM_OK)
            continue;
        fputs("<tr class=\"unreadable\"><td><code>", f);
        esc(rp, r->path);
        fputs("</code></td><td>", f);
        esc(rp, r->error[0] ? r->error : cm_strerror(r->status));
        fputs("</td></tr>\n", f);
    }
    fputs("</table>\n</section>\n", f);
}

void report_info_count(report_info *info, const file_result *const *results, size_t n)
{
    info->files_scanned = n + info->skipped;
    info->stills = info->videos = info->unreadable = 0;
    for (size_t i = 0; i < n; i++) {
        const file_result *r = results[i];
        if (r->status != CM_OK)
            info->unreadable++;
        else if (r->kind == FILE_VIDEO)
            info->videos++;
        else if (r->kind == FILE_STILL)
            info->stills++;
        else
            info->skipped++;
    }
}

int report_write(cm_ctx *ctx, cm_ledger *lg, const char *path, int force,
                 const file_result *const *results, size_t n, const report_info *info)
{
    report rp;
    memset(&rp, 0, sizeof(rp));
    rp.ctx = ctx;
    rp.lg = lg;
    rp.info = info;
    rp.n = n;
    rp.res = n ? malloc(n * sizeof(*rp.res)) : NULL;
    if (n && !rp.res)
        goto nomem;
    if (n)
        memcpy(rp.res, results, n * sizeof(*rp.res));
    if (n)
        qsort(rp.res, n, sizeof(*rp.res), cmp_path);
    if (collect_ids(&rp))
        goto nomem;

    cli_out out;
    int code = cli_out_open(&out, path, force);
    if (code) {
        free_ids(&rp);
        free(rp.res);
        return code;
    }
    rp.f = out.fp;
    header(&rp, info->title ? info->title : "celmark evidence report");
    if (summary(&rp)) {
        cli_out_abort(&out);
        goto nomem;
    }
    fputs("<section id=\"hits\">\n<h2>Marked files</h2>\n", rp.f);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (!is_marked(rp.res[i]))
            continue;
        if (hit(&rp, rp.res[i], ++k)) {
            cli_out_abort(&out);
            goto nomem;
        }
    }
    if (!k)
        fputs("<p>None.</p>\n", rp.f);
    fputs("</section>\n", rp.f);
    unmarked(&rp);
    unreadable(&rp);
    fputs("<footer>\n<p>score (z): normalised correlation of the file's evidence with the "
          "issue id's codeword; about N(0,1) when the file carries no mark of this key. "
          "false-positive probability: the chance that an unmarked file scores this high, "
          "corrected for every candidate id and geometry hypothesis tried. A claim is made "
          "only below the claim threshold. Video segments are runs of time windows with "
          "the same claim, decided again on their joint evidence.</p>\n"
          "</footer>\n</body>\n</html>\n",
          rp.f);
    free_ids(&rp);
    free(rp.res);
    return cli_out_commit(&out);

nomem:
    free_ids(&rp);
    free(rp.res);
    fprintf(stderr, "celmark: %s: out of memory writing the report; free memory\n", path);
    return EXIT_INTERNAL;
}
