/* The `celmark` command: shared declarations for the subcommand files. */
#ifndef CELMARK_CLI_H
#define CELMARK_CLI_H

#include "celmark/celmark.h"

#include <jansson.h>
#include <stdio.h>

/* Exit codes (DESIGN.md "Output conventions"). */
enum {
    EXIT_OK = 0,
    EXIT_FAIL = 1,     /* the check failed / mark not as expected */
    EXIT_USAGE = 2,    /* usage error */
    EXIT_INPUT = 3,    /* input unreadable or unsupported */
    EXIT_INTERNAL = 4, /* internal error */
};

typedef struct cli_command {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
    const char *usage; /* full help text for `celmark help NAME` */
} cli_command;

extern const cli_command cli_commands[];

/* Usage error: one line, then "Try 'celmark help CMD'.", returns EXIT_USAGE. */
int cli_usage_error(const char *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Report a library failure as "celmark: <detail>; <advice>" and return the
 * exit code that fits the status. */
int cli_fail(cm_ctx *ctx, int status);
/* The same for a detail of our own: "celmark: <detail>; <advice>". */
void cli_print_error(const char *detail, int status);

/* What to do about a failed write with this errno (ENOSPC, EFBIG...): the
 * advice part of "celmark: <file>: cannot write: <why>; <advice>". */
const char *cli_write_advice(int err);

/* Exit code for a library status (CM_OK -> 0). */
int cli_exit_code(int status);

/* Print a JSON object as one line on stdout (stable key order). Steals obj. */
void cli_print_json(json_t *obj);

/* {"schema", "file", "error"} for a file that could not be processed. */
void cli_print_json_error(const char *schema, const char *file, const char *error);

/* Handle --help for a subcommand: prints its usage to stdout. */
void cli_print_help(const char *name);

/* Parse exactly 16 hex digits (optional 0x): 0 ok, -1 bad. */
int cli_parse_id(const char *s, uint64_t *out);
void cli_format_id(uint64_t id, char out[17]);
int cli_parse_double(const char *s, double *out);
/* Input limits shared by info, stamp and verify (cm_limits). Add
 * CLI_LIMIT_OPTIONS to a getopt_long table; hand every option code to
 * cli_limit_option first: -1 = not a limit option, 0 = parsed into *l,
 * else the usage error's exit code. CLI_LIMIT_HELP documents them. */
enum { CLI_OPT_MAX_PIXELS = 0x1000, CLI_OPT_MAX_FILE, CLI_OPT_MAX_META, CLI_OPT_MAX_FRAMES,
       CLI_OPT_MAX_DECODE };
#define CLI_LIMIT_OPTIONS                                                   \
    {"max-pixels", required_argument, NULL, CLI_OPT_MAX_PIXELS},            \
    {"max-file-size", required_argument, NULL, CLI_OPT_MAX_FILE},           \
    {"max-meta-size", required_argument, NULL, CLI_OPT_MAX_META},           \
    {"max-frames", required_argument, NULL, CLI_OPT_MAX_FRAMES},            \
    {"max-decode-seconds", required_argument, NULL, CLI_OPT_MAX_DECODE}
#define CLI_LIMIT_HELP                                                                 \
    "Limits on untrusted input (a file over one is refused, exit 3, before the\n"      \
    "memory or time is spent; sizes take a K, M, G or T suffix, powers of 1024):\n"     \
    "      --max-pixels N          pixels per frame (default 268435456 = 16384^2)\n"   \
    "      --max-file-size BYTES   bytes per input file (default 4G)\n"                \
    "      --max-meta-size BYTES   metadata per file: ICC, EXIF, text (default 64M)\n"  \
    "      --max-frames N          video frames per file (default 1000000: 11.5 h\n"   \
    "                              at 24 fps)\n"                                       \
    "      --max-decode-seconds S  seconds of video demuxing and decoding per file\n"  \
    "                              (default 3600; 0 = no limit)\n"
int cli_limit_option(const char *cmd, int c, const char *arg, cm_limits *l);

/* Make the process non-dumpable (no core file, no ptrace) before any key
 * material is in memory; cli_load_key does it. */
void cli_protect_key_memory(void);

/* Load a key file; on failure prints the error and returns its exit code.
 * Calls cli_protect_key_memory first. */
int cli_load_key(cm_ctx *ctx, const char *path, cm_key **key);

/* One certificate of a key's chain (cmd_key.c): as a "LABEL: layer=N
 * date=D issuer=FP subject=FP name=NAME" line on stdout, or a JSON object
 * (layer, name, date, issuer_fingerprint, subject_fingerprint). */
void cli_cert_text(const char *label, const cm_key_cert *c);
json_t *cli_cert_json(const cm_key_cert *c);

/* Progress on stderr when it is a terminal (and not --quiet): frames,
 * fps and ETA. cli_progress_update has the cm_progress_fn signature. */
typedef struct cli_progress {
    const char *label;
    int enabled, drawn;
    double start, last;
} cli_progress;
void cli_progress_init(cli_progress *p, const char *label, int quiet);
void cli_progress_update(void *opaque, int64_t done, int64_t total);
void cli_progress_end(cli_progress *p);

/* The entries of dir (without . and ..), sorted bytewise so every walk
 * visits a tree in the same order: 0, or an errno (ENOMEM: *names holds
 * what was read). Free with cli_free_names. */
int cli_list_dir(const char *dir, char ***names, size_t *n);
void cli_free_names(char **names, size_t n);

/* Monotonic clock, seconds. */
double cli_now_sec(void);

/* For commands that read many frames (verify, scan, check): freed memory
 * is kept for the next frame, not returned to the system (main.c). */
void cli_keep_freed_memory(void);

/* A file's modification time in ns since the epoch (scan's resume key). */
struct stat;
int64_t cli_mtime_ns(const struct stat *st);

/* Commands */
int cmd_info(int argc, char **argv);
int cmd_keygen(int argc, char **argv);
int cmd_stamp(int argc, char **argv);
int cmd_verify(int argc, char **argv);
int cmd_ledger(int argc, char **argv);
int cmd_key(int argc, char **argv);
int cmd_scan(int argc, char **argv);
int cmd_check(int argc, char **argv);

/* ---- claims (cli/claims.c) ---------------------------------------------- */

/* What the ledger says about a claimed id (verify -l, scan -l). */
typedef struct cli_ledger_info {
    int used;   /* a ledger was given */
    int found;  /* the id has a row */
    int sig_ok; /* its signature verifies */
    cm_ledger_row row;
} cli_ledger_info;

/* "signature ok", "signature BAD" or "not in ledger". */
const char *cli_ledger_status(const cli_ledger_info *li);
/* Look issue_id up (when lg is open and marked): an exit code for a ledger
 * failure, else EXIT_OK. */
int cli_ledger_lookup(cm_ctx *ctx, cm_ledger *lg, int marked, uint64_t issue_id,
                      cli_ledger_info *li);
/* Every claim of r (li[0]: the top-level claim); clear with cli_ledger_clear. */
int cli_ledger_lookup_claims(cm_ctx *ctx, cm_ledger *lg, const cm_verify_result *r,
                             cli_ledger_info li[CM_MAX_CLAIMS]);
void cli_ledger_clear(cli_ledger_info li[CM_MAX_CLAIMS]);
/* The claims as a JSON array (issue_id, source, score, fpr, share, region,
 * and with a ledger recipient, asset, ledger_row), and as "claim:" lines. */
json_t *cli_claims_json(const cm_verify_result *r, const cli_ledger_info *li);
/* "blind", "candidate" or "none". */
const char *cli_source_name(cm_id_source s);
void cli_claims_text(const cm_verify_result *r, const cli_ledger_info *li);

/* ---- layers of the subcontracting chain (cli/layers.c) ---------------- */

/* Ledgers -l may give (verify, check, scan): the key's own, then its
 * delegates'. */
#define CLI_MAX_LEDGERS 16

/* One layer a key can read: its own, or a delegate's below it. */
typedef struct cli_layer {
    int layer;            /* 0 = the studio's */
    char name[4 * (CM_KEY_NAME_MAX + 1)]; /* "vendor-a/sub-x"; "" for the key's own */
    cm_key *key;          /* the derived layer key (owned; NULL for the own layer) */
    const cm_key *use;    /* the key that reads this layer */
    cm_ledger *lg;        /* the ledger of this layer's issues (borrowed), or NULL */
    uint64_t *cands;      /* its ids, the candidates (owned) */
    cm_verifier *ver;     /* reads this layer (owned) */
} cli_layer;

typedef struct cli_layers {
    cli_layer *l; /* l[0]: the key's own layer */
    int n;
} cli_layers;

/* The layers key can read: its own (candidates and params from base, lgs[0]
 * its ledger) and, recursively, every delegation recorded in the ledger of
 * a layer found (a delegate's ledger is the one among lgs its key signed).
 * Every verifier counts the n layers in its fpr. Returns an exit code;
 * close with cli_layers_close either way. */
int cli_layers_open(cm_ctx *ctx, const cm_key *key, cm_ledger *const *lgs, int nlg,
                    const cm_verify_params *base, cli_layers *out);
void cli_layers_close(cli_layers *ls);
/* What verify, check and scan do with -l LEDGER -l LEDGER ...: open
 * paths[1..n) read-only into lgs[1..n) (lgs[0], the key's own, is open
 * already or NULL), then the layers; when there are several, *ver (the
 * caller's verifier of the key's own layer) is replaced by layer 0's, which
 * counts them all. Returns an exit code; undo with cli_layers_teardown
 * (which closes lgs[1..n), not lgs[0]). */
int cli_layers_setup(cm_ctx *ctx, const cm_key *key, const char *const *paths, int n,
                     cm_ledger **lgs, const cm_verify_params *vp, cli_layers *out,
                     cm_verifier **ver);
void cli_layers_teardown(cli_layers *ls, cm_ledger **lgs, int n);
/* The layers found (res[i]: layer i's result) as JSON objects {layer,
 * delegate, issue_id, source, score, fpr, recipient, asset, ledger_row}
 * and as "layer N: ..." lines, outermost first. */
json_t *cli_layers_json(cm_ctx *ctx, const cli_layers *ls, const cm_verify_result *res);
void cli_layers_text(cm_ctx *ctx, const cli_layers *ls, const cm_verify_result *res);

#endif
