/* Pseudo-terminals the job made, whose output is stopped, and masters in packet mode whose status
 * byte is unread:
 *  - xoff: IXON on, the VSTOP character (^S) written into its master: stopped;
 *  - tcooff: IXON on, tcflow(TCOOFF): stopped, and ^S/^Q do not start it (only TCOON does);
 *  - raw: IXON off, tcflow(TCOOFF);
 *  - typed: bytes ^S and ^Q typed while IXON was off, then IXON turned on: they wait as data;
 *  - status: packet mode, a flush of both queues and IXON turned off: FLUSHREAD | FLUSHWRITE |
 *    NOSTOP unread;
 *  - pstop: packet mode, tcflow(TCOOFF): STOP unread, and stopped;
 *  - pstart: packet mode, tcflow(TCOOFF) then TCOON: START unread, running.
 * After restore each is stopped or running as it was, starts again only the way it would have
 * (xoff on ^Q and not on TCOON; tcooff on TCOON and not on ^Q), the typed bytes read back as typed
 * with the terminal still running, and each packet master reads its status byte, then nothing. */
#define _GNU_SOURCE
#include "cf.h"
#include <poll.h>
#include <sys/ioctl.h>
#include <termios.h>

enum { XOFF, TCOOFF_ON, RAW, TYPED, STATUS, PSTOP, PSTART, PTYS };
static const char *const NAME[PTYS] = {"xoff", "tcooff", "raw", "typed", "status", "pstop", "pstart"};
static int m[PTYS], s[PTYS];

static int open_pair(int *slave)
{
    int master = posix_openpt(O_RDWR | O_NOCTTY);
    if (master < 0 || grantpt(master) || unlockpt(master)) return -1;
    *slave = open(ptsname(master), O_RDWR | O_NOCTTY | O_NONBLOCK);
    return *slave < 0 ? -1 : master;
}

static int events(int fd, short want, int ms)
{
    struct pollfd p = {.fd = fd, .events = want};
    return poll(&p, 1, ms) == 1 ? p.revents : 0;
}

/* Whether the slave takes a byte now (the masters' queues are empty, so only a stop refuses it). */
static int takes(int i)
{
    return (events(s[i], POLLOUT, 0) & POLLOUT) != 0;
}

/* Wait up to `ms` until the slave's stop state is `stopped` (a byte written into the master is
 * handed to the slave's line discipline by a kernel worker). */
static int settle(int i, int stopped, int ms)
{
    for (int k = 0; k < ms; k++, usleep(1000))
        if (takes(i) == !stopped) return 1;
    return 0;
}

static int set_ixon(int i, int on)
{
    struct termios t;
    if (tcgetattr(s[i], &t)) return -1;
    t.c_lflag &= ~(tcflag_t)ECHO;
    t.c_iflag = on ? t.c_iflag | IXON : t.c_iflag & ~(tcflag_t)IXON;
    return tcsetattr(s[i], TCSANOW, &t);
}

static int packet(int i)
{
    int one = 1;
    return ioctl(m[i], TIOCPKT, &one);
}

static void check_status(int i, int want)
{
    unsigned char buf[16];
    int ev = events(m[i], POLLPRI, 1000);
    ssize_t got = (ev & POLLPRI) ? read(m[i], buf, sizeof buf) : -2;
    sc_check(got == 1 && buf[0] == want, NAME[i], "the packet master reads its status %#x: read %zd, %#x", want,
             got, got > 0 ? buf[0] : 0);
    sc_check(!(events(m[i], POLLPRI | POLLIN, 0) & (POLLPRI | POLLIN)), NAME[i], "%s", "then nothing");
}

int main(int argc, char **argv)
{
    cf_init(argc, argv);
    for (int i = 0; i < PTYS; i++)
        if ((m[i] = open_pair(&s[i])) < 0) return 3;

    if (set_ixon(XOFF, 1) || write(m[XOFF], "\023", 1) != 1 || !settle(XOFF, 1, 5000)) return 3;
    if (set_ixon(TCOOFF_ON, 1) || tcflow(s[TCOOFF_ON], TCOOFF) || !settle(TCOOFF_ON, 1, 5000)) return 3;
    if (set_ixon(RAW, 0) || tcflow(s[RAW], TCOOFF) || !settle(RAW, 1, 5000)) return 3;
    if (set_ixon(TYPED, 0) || write(m[TYPED], "a\023b\021c\n", 6) != 6) return 3;
    if (!(events(s[TYPED], POLLIN, 5000) & POLLIN) || set_ixon(TYPED, 1)) return 3;
    if (set_ixon(STATUS, 1) || packet(STATUS) || tcflush(s[STATUS], TCIOFLUSH) || set_ixon(STATUS, 0)) return 3;
    if (set_ixon(PSTOP, 1) || packet(PSTOP) || tcflow(s[PSTOP], TCOOFF) || !settle(PSTOP, 1, 5000)) return 3;
    if (set_ixon(PSTART, 1) || packet(PSTART) || tcflow(s[PSTART], TCOOFF) || tcflow(s[PSTART], TCOON)) return 3;
    for (int i = STATUS; i <= PSTART; i++)
        if (!(events(m[i], POLLPRI, 1000) & POLLPRI)) return 3;

    sc_ready();
    sc_wait_go();

    sc_check(!takes(XOFF), NAME[XOFF], "%s", "stopped");
    sc_check(tcflow(s[XOFF], TCOON) == 0 && !settle(XOFF, 0, 200), NAME[XOFF], "%s", "TCOON does not start it");
    sc_check(write(m[XOFF], "\021", 1) == 1 && settle(XOFF, 0, 5000), NAME[XOFF], "%s", "^Q starts it");

    sc_check(!takes(TCOOFF_ON), NAME[TCOOFF_ON], "%s", "stopped");
    sc_check(write(m[TCOOFF_ON], "\021", 1) == 1 && !settle(TCOOFF_ON, 0, 200), NAME[TCOOFF_ON], "%s",
             "^Q does not start it");
    sc_check(tcflow(s[TCOOFF_ON], TCOON) == 0 && settle(TCOOFF_ON, 0, 5000), NAME[TCOOFF_ON], "%s", "TCOON starts it");

    sc_check(!takes(RAW), NAME[RAW], "%s", "stopped");
    sc_check(tcflow(s[RAW], TCOON) == 0 && settle(RAW, 0, 5000), NAME[RAW], "%s", "TCOON starts it");

    char buf[64] = {0};
    ssize_t got = (events(s[TYPED], POLLIN, 1000) & POLLIN) ? read(s[TYPED], buf, sizeof buf) : -2;
    sc_check(got == 6 && memcmp(buf, "a\023b\021c\n", 6) == 0, NAME[TYPED], "the bytes typed read back: %zd", got);
    sc_check(takes(TYPED), NAME[TYPED], "%s", "running: the ^S typed stopped nothing");

    check_status(STATUS, TIOCPKT_FLUSHREAD | TIOCPKT_FLUSHWRITE | TIOCPKT_NOSTOP);
    sc_check(takes(STATUS), NAME[STATUS], "%s", "running");
    check_status(PSTOP, TIOCPKT_STOP);
    sc_check(!takes(PSTOP), NAME[PSTOP], "%s", "stopped");
    check_status(PSTART, TIOCPKT_START);
    sc_check(takes(PSTART), NAME[PSTART], "%s", "running");
    return sc_done();
}
