/*
 * Report files written by the command (verify --report, check --junit):
 * atomic output (temp file + rename, no clobber without force) and the
 * escaping of hostile strings (paths, ledger names) into HTML and XML.
 */
#ifndef CELMARK_CLI_OUTFILE_H
#define CELMARK_CLI_OUTFILE_H

#include <stdio.h>

/* An output file being written: fp writes to a hidden temporary file in
 * the destination's folder; cli_out_commit moves it into place. */
typedef struct cli_out {
    FILE *fp;
    char *path, *tmp;
    int force;
} cli_out;

/* Refuse early (before long work) when path exists and !force, or its
 * folder is missing. Prints "celmark: PATH: ...; advice" and returns
 * EXIT_INPUT, else EXIT_OK. */
int cli_out_check(const char *path, int force);

/* Create the temporary file. On failure prints one line and returns an
 * exit code (EXIT_INPUT / EXIT_INTERNAL); *o is then closed. */
int cli_out_open(cli_out *o, const char *path, int force);

/* Flush, fsync and move into place (without force never replacing an
 * existing file). Always releases *o; on failure removes the temporary
 * file, prints one line and returns an exit code. */
int cli_out_commit(cli_out *o);

/* Remove the temporary file and release *o (accepts a closed one). */
void cli_out_abort(cli_out *o);

/* Write s escaped for HTML text and attribute values and for XML 1.0
 * alike: & < > " ' become entities, C0 controls (except tab and
 * newline) and DEL become U+FFFD, and invalid UTF-8 sequences become
 * U+FFFD, so a hostile name can neither end an element nor make the
 * document ill-formed. NULL writes nothing. */
void cli_put_escaped(FILE *f, const char *s);

#endif
