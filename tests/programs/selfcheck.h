/* Self-checking test programs: each sets up one kernel resource, says it is
 * ready, waits, and after restore checks every attribute a program can
 * observe.   PROG OUT READY GO [ARGS...]
 *
 *   sc_init(argc, argv)   parse OUT READY GO (argv[1..3]); extra arguments from argv[4]
 *   sc_ready()            write our PID to READY: the test checkpoints us now
 *   sc_wait_go()          sleep-poll until GO exists (the test creates it after restore)
 *   sc_check(cond, what, fmt, ...)   one line "ok WHAT" or "BAD WHAT: detail" in OUT
 *   sc_done()             exit status: 0 when every check passed
 *
 * The test harness (tests/selfcheck.py) requires at least one "ok" line and
 * no "BAD" line. */
#ifndef INCR_TEST_SELFCHECK_H
#define INCR_TEST_SELFCHECK_H
#define _GNU_SOURCE
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static const char *sc_out_path, *sc_ready_path, *sc_go_path;
static FILE *sc_out;
static int sc_bad;

static inline void sc_init(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: %s OUT READY GO [ARGS...]\n", argv[0]);
        exit(2);
    }
    sc_out_path = argv[1];
    sc_ready_path = argv[2];
    sc_go_path = argv[3];
}

static inline void sc_ready(void)
{
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", sc_ready_path);
    FILE *f = fopen(tmp, "w");
    if (!f) exit(4);
    fprintf(f, "%d\n", getpid());
    fclose(f);
    rename(tmp, sc_ready_path);      /* the reader never sees it half-written */
}

static inline void sc_wait_go(void)
{
    while (access(sc_go_path, F_OK) != 0)
        usleep(1000);
}

static inline void sc_open_out(void)
{
    if (!sc_out) {
        sc_out = fopen(sc_out_path, "w");
        if (!sc_out) exit(5);
        setvbuf(sc_out, NULL, _IOLBF, 0);
    }
}

__attribute__((format(printf, 3, 4)))
static inline int sc_check(int ok, const char *what, const char *fmt, ...)
{
    sc_open_out();
    if (ok) {
        fprintf(sc_out, "ok %s\n", what);
    } else {
        va_list ap;
        fprintf(sc_out, "BAD %s: ", what);
        va_start(ap, fmt);
        vfprintf(sc_out, fmt, ap);
        va_end(ap);
        fputc('\n', sc_out);
        sc_bad = 1;
    }
    return ok;
}

static inline int sc_done(void)
{
    sc_open_out();
    fclose(sc_out);
    sc_out = NULL;
    return sc_bad ? 1 : 0;
}
#endif
