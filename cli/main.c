/*
 * celmark — command entry point: dispatches `celmark <command> [options] args`
 * from one table of {name, fn, summary, usage}.
 */
#include "cli.h"

#include <errno.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

static int cmd_help(int argc, char **argv);

const cli_command cli_commands[] = {
    {"info", cmd_info, "describe image files (format, size, depth, channels, colour tags)",
     "Usage: celmark info [--json] FILE...\n"
     "\n"
     "Describe each file: format, size, bit depth, channels, alpha, interlace and\n"
     "the colour and metadata tags it carries.\n"
     "\n"
     "  --json      one JSON object per file, one per line (schema \"celmark.info/1\")\n"
     "  -h, --help  show this help\n"
     "\n" CLI_LIMIT_HELP
     "\n"
     "Exit status: 0 all files read, 3 any file unreadable or unsupported.\n"},
    {"keygen", cmd_keygen, "create a studio key file (watermark secret + signing key)",
     "Usage: celmark keygen KEYFILE\n"
     "\n"
     "Create a new 256-bit watermark secret and an Ed25519 signing key from\n"
     "OpenSSL's random generator and write them to KEYFILE with mode 0600.\n"
     "Refuses to overwrite an existing file. Prints the key's fingerprint.\n"
     "Keep the file secret: anyone holding it can stamp and detect marks.\n"},
    {"key", cmd_key, "show a key file; delegate a vendor's key one layer down",
     "Usage: celmark key info [--json] KEYFILE\n"
     "       celmark key delegate -k KEYFILE -l LEDGER --to NAME [--json] OUT.key\n"
     "\n"
     "info      check KEYFILE (format, permissions, certificate chain) and print\n"
     "          its fingerprint (SHA-256 of the Ed25519 public key, first 16\n"
     "          bytes), the Ed25519 public key and its layer (0: a studio key);\n"
     "          for a delegated key also its name, root_fingerprint (the\n"
     "          studio's) and one cert: line per layer, the studio's first\n"
     "          (layer, date, issuer and subject fingerprints, name)\n"
     "delegate  make NAME's key one layer below KEYFILE (a studio key or a\n"
     "          vendor's, down to layer 4): its watermark secret derived\n"
     "          one-way from KEYFILE's, so KEYFILE's holder reads its marks;\n"
     "          a fresh signing key; a certificate signed by KEYFILE. Writes\n"
     "          OUT.key (mode 0600, never over an existing file) and records\n"
     "          the delegation as a signed row in LEDGER (created if\n"
     "          missing), both or neither. Prints key, name, layer,\n"
     "          fingerprint, issuer_fingerprint, root_fingerprint, ledger,\n"
     "          ledger_row.\n"
     "\n"
     "  -k, --key KEYFILE    the delegating key\n"
     "  -l, --ledger LEDGER  the delegating key's ledger\n"
     "      --to NAME        the delegate's name: 1 to 64 bytes of UTF-8, no\n"
     "                       control characters, no '/'\n"
     "      --json           one JSON object (schema \"celmark.key/1\",\n"
     "                       \"celmark.key-delegate/1\")\n"
     "  -h, --help           show this help\n"
     "\n"
     "Never prints secret material.\n"
     "\n"
     "Exit status: 0 ok, 2 usage error (a bad NAME too), 3 key missing, damaged\n"
     "or unsafe, KEYFILE at layer 4, OUT.key exists, or LEDGER unusable\n"
     "(nothing is left behind), 4 internal error.\n"},
    {"stamp", cmd_stamp, "embed a recipient's issue id invisibly into a copy of a frame",
     "Usage: celmark stamp -k KEYFILE --id HEX16 [options] IN OUT\n"
     "       celmark stamp -k KEYFILE -l LEDGER --recipient NAME --asset NAME [options] IN OUT\n"
     "\n"
     "Embed the 64-bit issue id (16 hex digits) into IN's luma and write OUT in\n"
     "the format its extension names (.png, .tif/.tiff, .dpx, .exr), else in IN's,\n"
     "keeping alpha, colour tags and metadata (TIFF: every tag; DPX: every header\n"
     "byte). IN may be any still celmark reads (PNG, TIFF, DPX, JPEG, WebP, BMP,\n"
     "GIF). Same key, id, options and input always give identical output bytes.\n"
     "A video (MP4, MOV, MKV, MXF...) is re-encoded with its own codec, profile\n"
     "and pixel format at a matched quality, every other stream copied. IN.####.png\n"
     "or IN.%04d.png with OUT.####.png stamps a sequence (all frames or none).\n"
     "\n"
     "  -k, --key KEYFILE     studio key (from 'celmark keygen')\n"
     "      --id HEX16        issue id to embed\n"
     "      --profile NAME    subtle | default | robust (default: default)\n"
     "      --strength S      multiply the profile's amplitude by S, (0, 4] (default 1)\n"
     "      --cel-safe        leave flat fills (8x8 of one colour) bit-exact\n"
     "  -l, --ledger LEDGER   draw a fresh unused issue id and record the copy in\n"
     "                        LEDGER (SQLite, created if missing): recipient, asset,\n"
     "                        hashes, parameters, key fingerprint, time, operator;\n"
     "                        signed and hash-chained. Prints issue_id and ledger_row.\n"
     "      --recipient NAME  who receives this copy (with -l, required)\n"
     "      --asset NAME      what is being sent (with -l, required)\n"
     "      --note TEXT       free text for the ledger row\n"
     "      --operator NAME   who stamps (default: $USER)\n"
     "      --frames RANGE    sequence frames: 1001-1100, 1-100x5, 1,3,10-20\n"
     "      --codec NAME      video encoder (default: the source's codec)\n"
     "      --crf N           video constant rate factor (default: the source's)\n"
     "      --qscale N        video quantiser for MJPEG/MPEG-4 (default 2)\n"
     "  -j, --jobs N          video frames marked at once, each on its own core,\n"
     "                        while decoding and encoding run on theirs; the same\n"
     "                        output whatever N (default: all cores)\n"
     "  -q, --quiet           no progress line on stderr\n"
     "  -f, --force           replace OUT if it exists\n"
     "  -h, --help            show this help\n"
     "\n" CLI_LIMIT_HELP
     "\n"
     "Exit status: 0 written, 2 usage error, 3 unreadable input, key or ledger,\n"
     "or OUT cannot be written (nothing is left behind: no file, no ledger row),\n"
     "4 internal error.\n"},
    {"verify", cmd_verify, "find which issue id a frame carries, with its false-positive probability",
     "Usage: celmark verify -k KEYFILE [--json] [--candidates FILE]\n"
     "                      [-l LEDGER [--asset NAME]] [--report OUT.html]\n"
     "                      [--map OUT.png] [--fast] FILE...\n"
     "\n"
     "Read each FILE (PNG, EXR, TIFF, DPX, JPEG, WebP, BMP, GIF, videos,\n"
     "IN.####.png sequences; recognised by content) and\n"
     "detect the mark blindly (no original needed) after re-encoding, scaling,\n"
     "cropping, rotation, flips and screenshots. A claim is made only when its\n"
     "false-positive probability (fpr) is at most --max-fpr. Every id whose own\n"
     "evidence passes is claimed (an average or a composite of copies names each\n"
     "copy: one claim: line each, strongest first, with its share of the frame\n"
     "and region; mixed: yes when several).\n"
     "\n"
     "  -k, --key KEYFILE      studio key\n"
     "      --candidates FILE  also score these issue ids (one HEX16 a line):\n"
     "                         far more sensitive than the blind decode\n"
     "  -l, --ledger LEDGER    score every issue id in LEDGER as a candidate and\n"
     "                         report the claimed copy's recipient, asset,\n"
     "                         stamped_at and ledger_row (signature ok / signature\n"
     "                         BAD / not in ledger); fpr counts every candidate.\n"
     "                         Repeat for delegates' ledgers: every layer the key\n"
     "                         can read (each delegation recorded in a ledger\n"
     "                         given) is read too, one 'layer N:' line each\n"
     "      --asset NAME       with -l: only the ids issued for this asset\n"
     "      --max-fpr P        claim threshold (default 1e-9)\n"
     "      --json             one JSON object per file (schema \"celmark.verify/1\")\n"
     "      --window SEC       video / sequence evidence window (default 2)\n"
     "      --frames RANGE     sequence frames (FILE = IN.####.png)\n"
     "      --fps N            sequence frame rate for timecodes (default 24)\n"
     "      --report OUT.html  also write a self-contained HTML evidence page:\n"
     "                         per recipient, per marked file (thumbnail, claim,\n"
     "                         score, fpr, sync, ledger signature, video timeline),\n"
     "                         unmarked and unreadable files; fetches nothing\n"
     "      --fast             triage a video: stop reading once its claim is\n"
     "                         decisive (fpr <= max-fpr / 1000, so the rest could\n"
     "                         only confirm it) and say at which frame\n"
     "      --map OUT.png      (one FILE) write where each claimed copy dominates:\n"
     "                         a grid of cells of about one tile, one colour per\n"
     "                         claim (strongest first: orange, sky blue, green,\n"
     "                         yellow...), grey for none, over a dimmed copy of\n"
     "                         the frame (a video's first frame)\n"
     "  -f, --force            replace OUT.html / OUT.png if it exists\n"
     "  -q, --quiet            no progress line on stderr\n"
     "  -h, --help             show this help\n"
     "\n" CLI_LIMIT_HELP
     "\n"
     "Exit status: 0 every file marked, 1 any file not marked, 2 usage error,\n"
     "3 any file or the key unreadable, or the report or map cannot be written,\n"
     "4 internal error.\n"},
    {"scan", cmd_scan, "examine every media file under folders: whose copy is each?",
     "Usage: celmark scan -k KEYFILE [-l LEDGER] [-j N] [--jsonl OUT] [--resume]\n"
     "                    [--shard I/N] [--report OUT.html] [--follow-symlinks]\n"
     "                    [--fast] PATH...\n"
     "\n"
     "Walk each PATH (folders recursively; symlinks not followed) and examine\n"
     "every still, sequence frame and video, recognised by content (other files\n"
     "are counted and skipped). One JSON object per file (schema\n"
     "\"celmark.scan/1\") as it goes: path, size, mtime_ns, sha256, kind, type,\n"
     "frames, marked, issue_id, recipient, asset, stamped_at, ledger_row, score,\n"
     "fpr, scale, rotation_deg, flipped, mixed and segments (video), or error. A\n"
     "bad file never stops the scan. Then a summary: files by type, marked files\n"
     "per recipient, unreadable files, throughput.\n"
     "\n"
     "  -k, --key KEYFILE      studio key\n"
     "  -l, --ledger LEDGER    name recipients and assets from the ledger;\n"
     "                         repeat for delegates' ledgers: every layer is\n"
     "                         read (JSON layers)\n"
     "  -j, --jobs N           workers (default: all cores)\n"
     "      --jsonl OUT        write the JSON Lines here (default stdout; the\n"
     "                         summary then goes to stdout, else to stderr)\n"
     "      --resume           skip files already in OUT (same path, size, mtime)\n"
     "                         and append: an interrupted scan continues\n"
     "      --shard I/N        examine only the files whose path hashes to I mod N\n"
     "                         (0 <= I < N): split one dump over N machines\n"
     "      --report OUT.html  the evidence page: summary per recipient, and per\n"
     "                         hit a thumbnail, recipient, asset, stamped-at time,\n"
     "                         score, fpr, sync and the video timeline; one\n"
     "                         self-contained file that fetches nothing\n"
     "      --follow-symlinks  follow links that stay inside the PATHs given\n"
     "      --fast             triage: stop reading a video once its claim is\n"
     "                         decisive (fpr <= 1e-12); JSON stopped_at_frame\n"
     "  -f, --force            replace an existing OUT or OUT.html\n"
     "  -h, --help             show this help\n"
     "\n" CLI_LIMIT_HELP
     "Lower --max-decode-seconds (and --max-file-size) for a dump of unknown\n"
     "origin: a file over a limit is listed as unreadable and the scan goes on.\n"
     "\n"
     "Exit status: 0 scanned, 2 usage error, 3 some files unreadable (listed), or\n"
     "OUT cannot be written (a full disk: the scan stops, OUT keeps only whole\n"
     "lines; continue with --resume), 4 internal error.\n"},
    {"check", cmd_check, "CI gate: do delivered files carry the expected recipient's mark only?",
     "Usage: celmark check -k KEYFILE [-l LEDGER] (--expect-recipient NAME |\n"
     "                     --expect-issue HEX16 | --expect-unmarked)\n"
     "                     [--junit OUT.xml [--force]] [--json] PATH...\n"
     "\n"
     "Check shots delivered back by a vendor. Each PATH is a file or a folder\n"
     "(walked recursively in name order; stills and videos are recognised by\n"
     "content, other files and symlinks are skipped). A file passes when:\n"
     "\n"
     "  --expect-recipient NAME  it carries a mark, and every id it claims (the\n"
     "                           file's and each video segment's) is in LEDGER,\n"
     "                           validly signed, and issued to NAME (needs -l);\n"
     "                           NAME may name a copy down the chain,\n"
     "                           vendor-a/sub-x (with the vendor's ledger too:\n"
     "                           -l STUDIO.db -l vendor-a.db)\n"
     "  --expect-issue HEX16     it carries a mark and every id claimed is HEX16\n"
     "  --expect-unmarked        it claims no id at all\n"
     "\n"
     "Video segments claiming nothing do not fail a file; a segment claiming\n"
     "another id does (a cut mixing two recipients' copies fails, naming both).\n"
     "\n"
     "  -k, --key KEYFILE      studio key\n"
     "  -l, --ledger LEDGER    score every issued id; name recipients. Repeat\n"
     "                         for delegates' ledgers: every layer is read\n"
     "      --junit OUT.xml    also write JUnit XML: one <testcase> per file\n"
     "                         (classname celmark.check, name = path), <failure>\n"
     "                         for a fail, <error> for an unreadable file\n"
     "  -f, --force            replace OUT.xml if it exists\n"
     "      --json             one JSON object per file (schema \"celmark.check/1\"):\n"
     "                         file, result (pass/fail/error), expected, type,\n"
     "                         frames, marked, found[] (issue_id, recipient,\n"
     "                         asset, ledger_row, frames), mixed, score, fpr,\n"
     "                         reason / error\n"
     "      --max-fpr P        claim threshold (default 1e-9)\n"
     "      --window SEC       video evidence window (default 2)\n"
     "  -h, --help             show this help\n"
     "\n" CLI_LIMIT_HELP
     "\n"
     "Text output: 'key: value' lines per file (file, result, type, marked,\n"
     "found, mixed, score, fpr, reason), then expected, files, passed, failed,\n"
     "unreadable, skipped, result.\n"
     "\n"
     "Exit status: 0 every file passed, 1 any file failed, 2 usage error,\n"
     "3 any file unreadable (takes precedence over 1: a file nobody could read\n"
     "was not checked), no media found, or key, ledger or OUT.xml unusable,\n"
     "4 internal error.\n"},
    {"ledger", cmd_ledger, "list, show, export and check the signed issue ledger",
     "Usage: celmark ledger list   -l LEDGER [--recipient R] [--asset A] [--json]\n"
     "       celmark ledger show   -l LEDGER [--json] ISSUE_ID\n"
     "       celmark ledger show   -l LEDGER [--json] --delegate NAME\n"
     "       celmark ledger export -l LEDGER --format csv|jsonl [--recipient R] [--asset A]\n"
     "       celmark ledger verify -l LEDGER -k KEYFILE [--json]\n"
     "\n"
     "list    one line per row: seq, issue_id, stamped_at, recipient, asset for a\n"
     "        stamped copy; seq, 'delegation', date, name, 'layer N key FP' for a\n"
     "        key delegated ('celmark key delegate'; not with --recipient or --asset)\n"
     "        (--json: one object per row, schema \"celmark.ledger/1\" or\n"
     "        \"celmark.ledger-delegation/1\")\n"
     "show    every field of one row, the signer's certificate chain when a\n"
     "        delegated key signed it, and whether its signature is valid;\n"
     "        --delegate NAME: every delegation to NAME instead\n"
     "export  every field of every row, as CSV (RFC 4180, header line; stamped\n"
     "        copies only) or JSON Lines (delegations too)\n"
     "verify  check the hash chain and every row's Ed25519 signature: each row\n"
     "        must be signed by KEYFILE or by a key it delegated to, at any\n"
     "        depth, as the certificate chain stored in the row proves (so a\n"
     "        vendor's ledger verifies with the studio's key); names the first\n"
     "        bad row\n"
     "\n"
     "Opening a ledger removes the leftovers of stamps that were killed midway,\n"
     "and upgrades a ledger of an older celmark in place.\n"
     "\n"
     "Exit status: 0 ok, 1 show: id or name not in the ledger / verify: ledger\n"
     "tampered, 2 usage error, 3 ledger or key unreadable, 4 internal error.\n"},
    {"help", cmd_help, "show help for a command", "Usage: celmark help [COMMAND]\n"},
    {NULL, NULL, NULL, NULL},
};

static const cli_command *find_command(const char *name)
{
    for (const cli_command *c = cli_commands; c->name; c++)
        if (strcmp(c->name, name) == 0)
            return c;
    return NULL;
}

static void print_main_help(FILE *f)
{
    fprintf(f, "Usage: celmark <command> [options] args\n"
               "\n"
               "Invisible, keyed provenance marks for animation frames.\n"
               "\n"
               "Commands:\n");
    for (const cli_command *c = cli_commands; c->name; c++)
        fprintf(f, "  %-10s %s\n", c->name, c->summary);
    fprintf(f, "\n"
               "  celmark help COMMAND   details of one command\n"
               "  celmark --version      print the version\n"
               "\n"
               "Exit status: 0 ok, 1 check failed / mark not as expected, 2 usage error,\n"
               "3 input unreadable or unsupported, 4 internal error.\n"
               "\n"
               "info, stamp, verify, scan and check read untrusted files under limits\n"
               "(pixels per frame, file size, metadata, video frames and decoding time)\n"
               "with safe defaults; see 'celmark help stamp' for the --max-... options.\n");
}

void cli_print_help(const char *name)
{
    const cli_command *c = find_command(name);
    if (c)
        fputs(c->usage, stdout);
}

static int cmd_help(int argc, char **argv)
{
    if (argc < 2) {
        print_main_help(stdout);
        return EXIT_OK;
    }
    const cli_command *c = find_command(argv[1]);
    if (!c)
        return cli_usage_error(NULL, "unknown command '%s'", argv[1]);
    fputs(c->usage, stdout);
    return EXIT_OK;
}

/* Memory freed stays the process's to use again. A 1080p frame's float
 * planes (8 MB each) are above glibc's first mmap threshold, and the top of
 * a heap past its trim threshold goes back to the system: every file scan
 * (or check, or verify of several files) reads had its planes mapped (or
 * the heap grown) anew, faulted in and zeroed page by page, then returned
 * (a video's frames reuse theirs: no change measured there). Both
 * limits raised together (either alone changes nothing): bench/scan's
 * 400-file dump scanned in 5.8 s, not 11.4 s (system time 6.0 -> 0.3 s)
 * for a peak RSS of 148 MB, not 137. Not for stamp, whose peak is bounded
 * against ffmpeg's (bench/video) and which reuses its frames' buffers
 * itself. The largest planes (4K floats, 33 MB) are still mapped one by
 * one: 32 MB is glibc's ceiling. */
void cli_keep_freed_memory(void)
{
#ifdef __GLIBC__
    mallopt(M_MMAP_THRESHOLD, 32 << 20);
    mallopt(M_TRIM_THRESHOLD, 1 << 30);
#endif
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        print_main_help(stderr);
        return EXIT_USAGE;
    }
    const char *name = argv[1];
    if (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0) {
        print_main_help(stdout);
        return EXIT_OK;
    }
    if (strcmp(name, "--version") == 0 || strcmp(name, "-V") == 0) {
        printf("celmark %s\n", cm_version());
        return EXIT_OK;
    }
    const cli_command *c = find_command(name);
    if (!c)
        return cli_usage_error(NULL, "unknown command '%s'", name);
    /* An output outgrowing the file size limit (ulimit -f) would raise
     * SIGXFSZ and kill us mid-write, leaving the temporary file behind;
     * ignored, write() fails with EFBIG and the command cleans up and
     * says so like for a full disk. */
    signal(SIGXFSZ, SIG_IGN);
    int code = c->run(argc - 1, argv + 1);
    /* Results on stdout that could not be written (a full disk, a closed
     * pipe) must not pass for a successful run. */
    if ((fflush(stdout) != 0 || ferror(stdout)) && code < EXIT_USAGE) {
        int err = errno ? errno : EIO;
        fprintf(stderr, "celmark: stdout: cannot write the results: %s; %s\n", strerror(err),
                cli_write_advice(err));
        code = EXIT_INPUT;
    }
    return code;
}
