/*
 * Tracing a crash to the files being read (scan --jsonl OUT --resume).
 *
 * A fault inside a decoder on hostile bytes ends the process. While the
 * log is open, a crash signal first writes the path each reader slot holds
 * into the log file, one per line, then takes its course (a sanitizer's
 * report included). A run that ends normally closes the log, which removes
 * the file: it exists only after a crash.
 */
#ifndef CELMARK_CLI_CRASHLOG_H
#define CELMARK_CLI_CRASHLOG_H

#define CRASHLOG_SLOTS 256 /* readers (scan workers) traced at once */

/* Truncate or create path and trace crashes into it: 0, or an errno. */
int crashlog_open(const char *path);

/* Reader slot is now reading path (NULL: done). path must stay valid until
 * the slot is cleared. Cheap: one relaxed atomic store. */
void crashlog_reading(int slot, const char *path);

/* Stop tracing and remove the log (no crash happened). */
void crashlog_close(const char *path);

/* The paths an earlier run's log names: up to max (malloc'd, into paths),
 * their number, or -1 with errno set when the log cannot be read (a missing
 * log is 0). */
int crashlog_load(const char *path, char **paths, int max);

#endif
