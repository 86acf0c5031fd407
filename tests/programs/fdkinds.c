/* Self-checking: eventfd, signalfd, timerfd, epoll and inotify survive a
 * checkpoint/restore and still behave.
 *   fdkinds OUT READY GO WATCHDIR
 * Sets everything up, writes READY, spins until GO exists; then (after the
 * test sent SIGUSR1 and created WATCHDIR/new) checks each resource and writes
 * "ok <what>" or "BAD <what> ..." lines to OUT; exit status 0 if all ok. */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

static FILE *out;
static int bad;
static void check(int ok, const char *what, const char *detail)
{
    fprintf(out, "%s %s%s%s\n", ok ? "ok" : "BAD", what, ok ? "" : " ", ok ? "" : detail);
    bad |= !ok;
}

int main(int argc, char **argv)
{
    out = fopen(argv[1], "w");
    int ev = eventfd(5, EFD_NONBLOCK | EFD_SEMAPHORE);
    sigset_t m;
    sigemptyset(&m);
    sigaddset(&m, SIGUSR1);
    sigprocmask(SIG_BLOCK, &m, NULL);
    int sfd = signalfd(-1, &m, SFD_NONBLOCK);
    int tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK);
    struct itimerspec its = { { 0, 50 * 1000 * 1000 }, { 0, 50 * 1000 * 1000 } };
    timerfd_settime(tfd, 0, &its, NULL);
    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event e = { .events = EPOLLIN, .data.u64 = 0x1234 };
    epoll_ctl(ep, EPOLL_CTL_ADD, ev, &e);
    e.data.u64 = 99;
    epoll_ctl(ep, EPOLL_CTL_ADD, tfd, &e);
    int in = inotify_init1(IN_NONBLOCK);
    int first = inotify_add_watch(in, "/", IN_ATTRIB);
    inotify_rm_watch(in, first);                       /* a gap: the next watch is number 2 */
    char ignored[64] __attribute__((aligned(8)));      /* its IN_IGNORED, read: a checkpoint refuses */
    if (read(in, ignored, sizeof ignored) <= 0) return 7;      /* unread events (engine/inotify.py) */
    int wd = inotify_add_watch(in, argv[4], IN_CREATE);
    FILE *r = fopen(argv[2], "w");
    fprintf(r, "%d\n", getpid());
    fclose(r);
    volatile uint64_t spin = 0;
    while (access(argv[3], F_OK) != 0)
        for (int i = 0; i < 100000; i++) spin += i;

    uint64_t v;
    int reads = 0;
    while (read(ev, &v, 8) == 8) reads++;
    check(reads == 5 && errno == EAGAIN, "eventfd", "semaphore count not 5");
    struct signalfd_siginfo si;
    int got = 0;
    for (int i = 0; i < 2000 && !got; i++) {
        if (read(sfd, &si, sizeof si) == sizeof si) got = si.ssi_signo == SIGUSR1;
        else usleep(1000);
    }
    check(got, "signalfd", "no SIGUSR1");
    eventfd_write(ev, 1);
    struct epoll_event evs[4];
    int seen_ev = 0, seen_t = 0;
    for (int i = 0; i < 200 && !(seen_ev && seen_t); i++) {
        int n = epoll_wait(ep, evs, 4, 20);
        for (int k = 0; k < n; k++) {
            seen_ev |= evs[k].data.u64 == 0x1234;
            seen_t |= evs[k].data.u64 == 99;
        }
    }
    check(seen_ev && seen_t, "epoll", "eventfd or timerfd not reported");
    uint64_t ticks = 0;
    check(read(tfd, &ticks, 8) == 8 && ticks >= 1, "timerfd", "no expiration");
    char buf[4096];
    int found = 0;
    for (int i = 0; i < 2000 && !found; i++) {
        ssize_t n = read(in, buf, sizeof buf);
        for (ssize_t off = 0; n > 0 && off < n;) {
            struct inotify_event *ie = (struct inotify_event *)(buf + off);
            found |= ie->wd == wd && ie->len && !strcmp(ie->name, "new");
            off += sizeof *ie + ie->len;
        }
        if (!found) usleep(1000);
    }
    check(found && wd == 2, "inotify", "no IN_CREATE for new");
    fclose(out);
    return bad;
}
