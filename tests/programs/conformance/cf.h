/* Helpers shared by the conformance corpus (tests/test_conformance.py), on top of
 * ../selfcheck.h.  Every program is run as   PROG OUT READY GO WORK
 * where WORK is an empty directory of its own (files, FIFOs, sub-reports).
 *
 *   cf_init(argc, argv)        sc_init + WORK
 *   cf_path("name")            WORK/name (a few rotating static buffers)
 *   cf_culprit(pid)            for programs incr must refuse: the PID holding the resource
 *   cf_slurp(path, buf, n)     whole file into buf (NUL-terminated), its length or -1
 *   cf_field(path, "Key:")     the value of one "Key:\tvalue" line of a /proc file, or ""
 *   cf_vmflags(addr)           VmFlags of the mapping holding addr, from /proc/self/smaps
 *   cf_maps_line(needle)       the first /proc/self/maps line naming needle, from it on
 *   cf_link(path)              what the symbolic link path names ("" if it cannot be read; a few
 *                              rotating static buffers), cf_fd_link(fd) that of /proc/self/fd/FD
 *   cf_epoll_watches(ep, buf, n)   epoll ep's watch list from fdinfo, by target descriptor
 *   cf_maps(buf, n)            /proc/self/maps, adjacent anonymous mappings of equal protection
 *                              joined (the kernel merges them or not by history the job cannot see)
 *   cf_same(before, after, what)   one check: two strings equal (first difference shown)
 *
 * Processes other than the one that calls sc_ready report through sub-reports:
 *   cf_sub("tag")              in a child: its checks go to OUT.tag (call before any check)
 *   cf_collect("tag", pid)     in the parent: wait for pid, copy OUT.tag's lines into our OUT,
 *                              and check that it exited with status 0
 * Children say they are set up through a pipe:  cf_gate_open / cf_gate_pass / cf_gate_wait. */
#ifndef INCR_CONFORMANCE_CF_H
#define INCR_CONFORMANCE_CF_H
#include "../selfcheck.h"
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>

static const char *cf_work;

static inline void cf_init(int argc, char **argv)
{
    sc_init(argc, argv);
    if (argc < 5) {
        fprintf(stderr, "usage: %s OUT READY GO WORK\n", argv[0]);
        exit(2);
    }
    cf_work = argv[4];
}

static inline const char *cf_path(const char *name)
{
    static char bufs[8][4096];
    static int next;
    char *b = bufs[next++ % 8];
    snprintf(b, sizeof bufs[0], "%s/%s", cf_work, name);
    return b;
}

static inline void cf_culprit(pid_t pid)
{
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", cf_path("culprit"));
    FILE *f = fopen(tmp, "w");
    if (!f) exit(4);
    fprintf(f, "%d\n", pid);
    fclose(f);
    rename(tmp, cf_path("culprit"));
}

static inline long cf_slurp(const char *path, char *buf, size_t size)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        buf[0] = 0;
        return -1;
    }
    size_t len = 0;
    for (;;) {
        ssize_t n = read(fd, buf + len, size - 1 - len);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        len += (size_t)n;
        if (len == size - 1) break;
    }
    close(fd);
    buf[len] = 0;
    return (long)len;
}

static inline const char *cf_field(const char *path, const char *key)
{
    static char text[65536];
    static char value[4096];
    value[0] = 0;
    if (cf_slurp(path, text, sizeof text) < 0) return value;
    size_t klen = strlen(key);
    for (char *line = text; line && *line; ) {
        char *nl = strchr(line, '\n');
        if (strncmp(line, key, klen) == 0) {
            char *v = line + klen;
            while (*v == ' ' || *v == '\t') v++;
            size_t n = nl ? (size_t)(nl - v) : strlen(v);
            if (n >= sizeof value) n = sizeof value - 1;
            memcpy(value, v, n);
            value[n] = 0;
            return value;
        }
        line = nl ? nl + 1 : NULL;
    }
    return value;
}

/* The first line of /proc/self/maps naming `needle` from it on ("none" if there is none). */
static inline const char *cf_maps_line(const char *needle)
{
    static char maps[65536];
    cf_slurp("/proc/self/maps", maps, sizeof maps);
    char *line = strstr(maps, needle);
    if (!line) return "none";
    char *eol = strchr(line, '\n');
    if (eol) *eol = 0;
    return line;
}

static inline const char *cf_link(const char *path)
{
    static char bufs[8][4096];
    static int next;
    char *b = bufs[next++ % 8];
    ssize_t n = readlink(path, b, sizeof bufs[0] - 1);
    b[n < 0 ? 0 : n] = 0;
    return b;
}

static inline const char *cf_fd_link(int fd)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    return cf_link(path);
}

/* The kernel lists an epoll's watches in an order of its own: here by target descriptor. */
static inline void cf_epoll_watches(int ep, char *out, size_t size)
{
    char path[64], text[8192];
    snprintf(path, sizeof path, "/proc/self/fdinfo/%d", ep);
    cf_slurp(path, text, sizeof text);
    out[0] = 0;
    size_t used = 0;
    for (int want = 0; want < 64; want++)
        for (char *line = strstr(text, "tfd:"); line; line = strstr(line + 1, "tfd:")) {
            int tfd;
            unsigned events;
            unsigned long long data;
            if (sscanf(line, "tfd: %d events: %x data: %llx", &tfd, &events, &data) == 3 && tfd == want)
                used += (size_t)snprintf(out + used, size - used, "fd %d events %x data %llx; ", tfd, events, data);
        }
}

static inline const char *cf_vmflags(const void *addr)
{
    static char text[1 << 20];
    static char flags[512];
    flags[0] = 0;
    if (cf_slurp("/proc/self/smaps", text, sizeof text) < 0) return flags;
    uintptr_t a = (uintptr_t)addr;
    int inside = 0;
    for (char *line = text; line && *line; ) {
        char *nl = strchr(line, '\n');
        unsigned long lo, hi;
        if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2 && strchr(line, '-') < strchr(line, ' '))
            inside = a >= lo && a < hi;
        else if (inside && strncmp(line, "VmFlags:", 8) == 0) {
            size_t n = nl ? (size_t)(nl - line - 8) : strlen(line + 8);
            if (n >= sizeof flags) n = sizeof flags - 1;
            memcpy(flags, line + 8, n);
            flags[n] = 0;
            return flags;
        }
        line = nl ? nl + 1 : NULL;
    }
    return flags;
}

static inline void cf_maps(char *buf, size_t size)
{
    static char text[1 << 20];
    buf[0] = 0;
    if (cf_slurp("/proc/self/maps", text, sizeof text) < 0) return;
    size_t used = 0;
    unsigned long cur_lo = 0, cur_hi = 0;
    char cur_rest[512] = "";
    int have = 0;
    for (char *line = text; line && *line; ) {
        char *nl = strchr(line, '\n');
        if (nl) *nl = 0;
        unsigned long lo, hi;
        char rest[512] = "";
        if (sscanf(line, "%lx-%lx %511[^\n]", &lo, &hi, rest) == 3) {
            int anon = strncmp(rest + 5, "00000000 00:00 0", 16) == 0 && strlen(rest) <= 21 + 10 &&
                       strchr(rest + 21, '[') == NULL && strchr(rest + 21, '/') == NULL;
            if (have && anon && lo == cur_hi && strcmp(rest, cur_rest) == 0) {
                cur_hi = hi;
            } else {
                if (have) used += (size_t)snprintf(buf + used, size - used, "%lx-%lx %s\n", cur_lo, cur_hi, cur_rest);
                cur_lo = lo;
                cur_hi = hi;
                snprintf(cur_rest, sizeof cur_rest, "%s", rest);
                have = 1;
            }
            if (used >= size) return;
        }
        line = nl ? nl + 1 : NULL;
    }
    if (have) snprintf(buf + used, size - used, "%lx-%lx %s\n", cur_lo, cur_hi, cur_rest);
}

/* "start-end VmFlags" of every mapping, one a line, into buf (static storage: no heap change). */
static inline void cf_all_vmflags(char *buf, size_t size)
{
    static char text[1 << 21];
    buf[0] = 0;
    if (cf_slurp("/proc/self/smaps", text, sizeof text) < 0) return;
    size_t used = 0;
    char range[64] = "";
    for (char *line = text; line && *line; ) {
        char *nl = strchr(line, '\n');
        unsigned long lo, hi;
        if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2 && strchr(line, '-') < strchr(line, ' '))
            snprintf(range, sizeof range, "%lx-%lx", lo, hi);
        else if (strncmp(line, "VmFlags:", 8) == 0) {
            int n = snprintf(buf + used, size - used, "%s%.*s\n", range, nl ? (int)(nl - line - 8) : 200, line + 8);
            if (n > 0 && (size_t)n < size - used) used += (size_t)n;
        }
        line = nl ? nl + 1 : NULL;
    }
}

/* The fault-free check of one byte: 1 if reading `p` faults. */
#include <setjmp.h>
static sigjmp_buf cf_jump;
static void cf_on_fault(int sig) { siglongjmp(cf_jump, sig); }
static inline int cf_faults(volatile const char *p, int write)
{
    struct sigaction sa = {.sa_handler = cf_on_fault}, old_segv, old_bus;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_NODEFER;
    sigaction(SIGSEGV, &sa, &old_segv);
    sigaction(SIGBUS, &sa, &old_bus);
    int faulted = 0;
    if (sigsetjmp(cf_jump, 1) == 0) {
        if (write) *(volatile char *)p = *p;
        else (void)*p;
    } else {
        faulted = 1;
    }
    sigaction(SIGSEGV, &old_segv, NULL);
    sigaction(SIGBUS, &old_bus, NULL);
    return faulted;
}

static inline int cf_same(const char *before, const char *after, const char *what)
{
    if (strcmp(before, after) == 0) return sc_check(1, what, "%s", "");
    size_t i = 0;
    while (before[i] && before[i] == after[i]) i++;
    size_t from = i > 60 ? i - 60 : 0;
    return sc_check(0, what, "differ at byte %zu: before \"%.120s\" after \"%.120s\"", i, before + from,
                    after + from);
}

static inline void cf_sub(const char *tag)
{
    char *p = malloc(strlen(sc_out_path) + strlen(tag) + 2);
    if (!p) _exit(5);
    sprintf(p, "%s.%s", sc_out_path, tag);
    sc_out_path = p;
    sc_out = NULL;               /* (the parent's FILE is line-buffered: nothing of it is pending) */
    sc_bad = 0;
}

static inline void cf_collect(const char *tag, pid_t pid)
{
    int st = 0;
    pid_t got;
    while ((got = waitpid(pid, &st, __WALL)) < 0 && errno == EINTR) {}
    char path[4200], what[256];
    snprintf(path, sizeof path, "%s.%s", sc_out_path, tag);
    FILE *f = fopen(path, "r");
    int lines = 0;
    if (f) {
        char line[2048];
        while (fgets(line, sizeof line, f)) {
            line[strcspn(line, "\n")] = 0;
            lines++;
            int ok = strncmp(line, "ok ", 3) == 0;
            snprintf(what, sizeof what, "[%s] %.200s", tag, ok ? line + 3 : line);
            sc_check(ok, what, "%s", "");
        }
        fclose(f);
    }
    snprintf(what, sizeof what, "[%s] exits 0 with a report", tag);
    sc_check(got == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0 && lines > 0, what,
             "waitpid %d (errno %d), status %#x, %d lines", got, got < 0 ? errno : 0, st, lines);
}

/* A one-way gate from children to the parent: each child passes once when it is set up. */
static inline void cf_gate_open(int gate[2])
{
    if (pipe2(gate, O_CLOEXEC)) exit(6);
}

static inline void cf_gate_pass(int gate[2])
{
    char c = 1;
    if (write(gate[1], &c, 1) != 1) _exit(6);
}

static inline void cf_gate_wait(int gate[2], int count)
{
    char c;
    for (int i = 0; i < count; ) {
        ssize_t n = read(gate[0], &c, 1);
        if (n == 1) i++;
        else if (n < 0 && errno == EINTR) continue;
        else exit(6);
    }
}

static inline int64_t cf_now_ns(clockid_t clock)
{
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static inline pid_t cf_gettid(void) { return (pid_t)syscall(SYS_gettid); }
#endif
