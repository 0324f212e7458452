/* Tracing a crash to the files being read (see crashlog.h). */
#include "crashlog.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

static int log_fd = -1;
static _Atomic(const char *) reading[CRASHLOG_SLOTS];
static const int crash_signals[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT};
#define NSIGNALS (int)(sizeof(crash_signals) / sizeof(crash_signals[0]))
static struct sigaction prev[NSIGNALS];

/* Write the paths being read, then let the signal do what it did before.
 * Only async-signal-safe calls. */
static void on_crash(int sig, siginfo_t *si, void *uc)
{
    for (int i = 0; i < CRASHLOG_SLOTS && log_fd >= 0; i++) {
        const char *p = atomic_load_explicit(&reading[i], memory_order_relaxed);
        if (p && write(log_fd, p, strlen(p)) > 0) {
            ssize_t w = write(log_fd, "\n", 1);
            (void)w; /* nothing more can be done about it here */
        }
    }
    for (int k = 0; k < NSIGNALS; k++) {
        if (crash_signals[k] != sig)
            continue;
        sigaction(sig, &prev[k], NULL);
        if ((prev[k].sa_flags & SA_SIGINFO) && prev[k].sa_sigaction)
            prev[k].sa_sigaction(sig, si, uc);
        else if (prev[k].sa_handler != SIG_DFL && prev[k].sa_handler != SIG_IGN)
            prev[k].sa_handler(sig);
        break;
    }
    signal(sig, SIG_DFL);
    raise(sig);
}

int crashlog_open(const char *path)
{
    log_fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    if (log_fd < 0)
        return errno;
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_sigaction = on_crash;
    sa.sa_flags = SA_SIGINFO;
    sigemptyset(&sa.sa_mask);
    for (int k = 0; k < NSIGNALS; k++)
        sigaction(crash_signals[k], &sa, &prev[k]);
    return 0;
}

void crashlog_reading(int slot, const char *path)
{
    if (slot >= 0 && slot < CRASHLOG_SLOTS)
        atomic_store_explicit(&reading[slot], path, memory_order_relaxed);
}

void crashlog_close(const char *path)
{
    if (log_fd < 0)
        return;
    for (int k = 0; k < NSIGNALS; k++)
        sigaction(crash_signals[k], &prev[k], NULL);
    close(log_fd);
    log_fd = -1;
    unlink(path);
}

int crashlog_load(const char *path, char **paths, int max)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return errno == ENOENT ? 0 : -1;
    int n = 0;
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    while (n < max && (len = getline(&line, &cap, f)) > 0) {
        if (line[len - 1] == '\n')
            line[--len] = '\0';
        if (len == 0)
            continue;
        if (!(paths[n] = strdup(line)))
            break;
        n++;
    }
    free(line);
    fclose(f);
    return n;
}
