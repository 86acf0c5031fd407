/* Checks made in the children of a self-checking program (selfcheck.h), relayed to its
 * parent, which alone writes OUT.
 *   relay_init()                  before forking: the pipe the children write to
 *   relay_check(ok, what, fmt...) in a child: one verdict, as sc_check() takes it
 *   relay_collect(timeout_ms)     in the parent, once every child has its write end: closes the
 *                                 parent's, and turns every verdict into an sc_check() line
 *                                 until all writers are gone (a BAD line when they take longer)
 * And what the lock programs read back: the "lock:" lines of /proc/PID/fdinfo/FD. */
#ifndef INCR_TEST_RELAY_H
#define INCR_TEST_RELAY_H
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "selfcheck.h"

static int relay_fd[2] = { -1, -1 };

static inline void relay_init(void)
{
    if (pipe(relay_fd) != 0)
        exit(6);
}

__attribute__((format(printf, 3, 4)))
static inline int relay_check(int ok, const char *what, const char *fmt, ...)
{
    char line[512];
    int n = snprintf(line, sizeof line, "%d|%s|", ok ? 1 : 0, what);
    va_list ap;
    va_start(ap, fmt);
    n += vsnprintf(line + n, sizeof line - n - 1, fmt, ap);
    va_end(ap);
    if (n > (int)sizeof line - 2)
        n = sizeof line - 2;
    line[n++] = '\n';
    if (write(relay_fd[1], line, n) != n)     /* one write under PIPE_BUF: never interleaved */
        _exit(7);
    return ok;
}

static inline void relay_line(char *line)
{
    char *what = strchr(line, '|'), *detail = what ? strchr(what + 1, '|') : NULL;
    if (!detail) {
        sc_check(0, "relay", "garbled line %s", line);
        return;
    }
    *what++ = 0;
    *detail++ = 0;
    sc_check(atoi(line) == 1, what, "%s", detail);
}

static inline void relay_collect(int timeout_ms)
{
    char buf[8192];
    size_t have = 0;
    close(relay_fd[1]);
    for (;;) {
        struct pollfd p = { .fd = relay_fd[0], .events = POLLIN };
        if (poll(&p, 1, timeout_ms) != 1) {
            sc_check(0, "relay", "the children did not finish their checks within %d ms", timeout_ms);
            return;
        }
        ssize_t k = read(relay_fd[0], buf + have, sizeof buf - 1 - have);
        if (k <= 0)
            return;
        have += (size_t)k;
        buf[have] = 0;
        char *start = buf, *nl;
        while ((nl = strchr(start, '\n')) != NULL) {
            *nl = 0;
            relay_line(start);
            start = nl + 1;
        }
        have = strlen(start);
        memmove(buf, start, have);
    }
}

/* The locks /proc/PID/fdinfo/FD shows, one per line, normalised to "KIND TYPE PID START END"
 * (without the ordinal, "ADVISORY"/"ACTIVE" and the device:inode), sorted; "" when none. */
static inline void fd_locks(int pid, int fd, char *out, size_t size)
{
    char path[64], line[256], items[16][96];
    int n = 0;
    snprintf(path, sizeof path, "/proc/%d/fdinfo/%d", pid, fd);
    FILE *f = fopen(path, "r");
    out[0] = 0;
    if (!f) {
        snprintf(out, size, "(no %s)", path);
        return;
    }
    while (fgets(line, sizeof line, f) && n < 16) {
        char kind[16], state[16], type[16], owner[16], start[24], end[24];
        if (strncmp(line, "lock:", 5) != 0)
            continue;
        if (sscanf(line + 5, " %*s %15s %15s %15s %15s %*s %23s %23s", kind, state, type, owner, start, end) != 6)
            continue;
        snprintf(items[n++], sizeof items[0], "%s %s %s %s %s", kind, type, owner, start, end);
    }
    fclose(f);
    for (int i = 0; i < n; i++)                  /* a handful: insertion sort */
        for (int j = i; j > 0 && strcmp(items[j - 1], items[j]) > 0; j--) {
            char t[96];
            strcpy(t, items[j]);
            strcpy(items[j], items[j - 1]);
            strcpy(items[j - 1], t);
        }
    size_t used = 0;
    for (int i = 0; i < n; i++) {
        size_t len = strlen(items[i]);
        if (used + len + 3 > size)
            break;
        if (i) {
            memcpy(out + used, "; ", 2);
            used += 2;
        }
        memcpy(out + used, items[i], len);
        used += len;
        out[used] = 0;
    }
}
#endif
