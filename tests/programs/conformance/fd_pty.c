/* A pseudo-terminal the job made, as `script` uses one: the parent holds the master (O_NONBLOCK,
 * packet mode off), sets the slave's termios (ECHO off, VMIN 1, a speed) and window size 33x101;
 * a child makes a session of its own, whose controlling terminal the slave becomes (opened
 * without O_NOCTTY), in the foreground, and opens /dev/tty too.
 * After restore: the same index and slave name (TIOCGPTN, ptsname, ttyname), the master's status
 * flags; the termios and window size as set; in the child: the session and foreground group, its
 * controlling terminal still the slave (/dev/tty works: what it writes there the parent reads
 * from the master); what the parent writes into the master the child reads as a line. */
#define _GNU_SOURCE
#include "cf.h"
#include <poll.h>
#include <sys/ioctl.h>
#include <termios.h>

static ssize_t read_wait(int fd, char *buf, size_t n)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    if (poll(&p, 1, 5000) != 1) return -1;
    return read(fd, buf, n);
}

int main(int argc, char **argv)
{
    cf_init(argc, argv);
    int m = posix_openpt(O_RDWR | O_NOCTTY);
    if (m < 0 || grantpt(m) || unlockpt(m)) return 3;
    fcntl(m, F_SETFL, fcntl(m, F_GETFL) | O_NONBLOCK);
    char name[64];
    snprintf(name, sizeof name, "%s", ptsname(m));
    int index = -1;
    ioctl(m, TIOCGPTN, &index);
    int s = open(name, O_RDWR | O_NOCTTY);
    struct termios t;
    if (s < 0 || tcgetattr(s, &t)) return 3;
    t.c_lflag &= ~(tcflag_t)ECHO;
    t.c_cc[VMIN] = 1;
    cfsetspeed(&t, B19200);
    struct winsize ws = {.ws_row = 33, .ws_col = 101};
    if (tcsetattr(s, TCSANOW, &t) || ioctl(m, TIOCSWINSZ, &ws)) return 3;
    int mflags = fcntl(m, F_GETFL);
    int gate[2];
    cf_gate_open(gate);
    pid_t child = fork();
    if (child == 0) {
        cf_sub("child");
        close(m);
        close(s);
        if (setsid() < 0) _exit(3);
        int cs = open(name, O_RDWR);                 /* a session leader without one: its controlling terminal */
        int tty = open("/dev/tty", O_RDWR);
        if (cs < 0 || tty < 0 || tcgetpgrp(cs) != getpid()) _exit(3);
        cf_gate_pass(gate);
        sc_wait_go();
        sc_check(getsid(0) == getpid() && getpgrp() == getpid(), "the child leads its session and group",
                 "sid %d pgrp %d", getsid(0), getpgrp());
        sc_check(tcgetpgrp(cs) == getpid() && tcgetsid(cs) == getpid(), "its terminal's foreground and session",
                 "%d %d", tcgetpgrp(cs), tcgetsid(cs));
        char *tn = ttyname(cs);
        sc_check(tn && strcmp(tn, name) == 0, "ttyname of its slave", "%s, was %s", tn ? tn : "-", name);
        int again = open("/dev/tty", O_RDWR);
        sc_check(again >= 0, "it still has a controlling terminal (/dev/tty opens)", "errno %d", errno);
        sc_check(write(tty, "from-tty\n", 9) == 9, "it writes through /dev/tty", "errno %d", errno);
        char buf[32] = {0};
        ssize_t n = read_wait(cs, buf, sizeof buf);
        sc_check(n == 6 && memcmp(buf, "input\n", 6) == 0, "it reads the parent's line", "%zd %.6s", n, buf);
        exit(sc_done());
    }
    cf_gate_wait(gate, 1);
    sc_ready();
    sc_wait_go();
    int now = -1;
    ioctl(m, TIOCGPTN, &now);
    sc_check(now == index && strcmp(ptsname(m), name) == 0, "the same index and slave name", "%d %s, was %d %s", now,
             ptsname(m), index, name);
    sc_check(fcntl(m, F_GETFL) == mflags, "the master's status flags", "%#x, was %#x", fcntl(m, F_GETFL), mflags);
    struct termios t2;
    struct winsize w2 = {0};
    tcgetattr(s, &t2);
    ioctl(s, TIOCGWINSZ, &w2);
    sc_check(!(t2.c_lflag & ECHO) && t2.c_cc[VMIN] == 1 && cfgetospeed(&t2) == B19200 && t2.c_lflag == t.c_lflag &&
             t2.c_iflag == t.c_iflag && t2.c_oflag == t.c_oflag && t2.c_cflag == t.c_cflag, "the slave's termios",
             "lflag %#x cflag %#x", t2.c_lflag, t2.c_cflag);
    sc_check(w2.ws_row == 33 && w2.ws_col == 101, "the window size", "%dx%d", w2.ws_row, w2.ws_col);
    char buf[32] = {0};
    ssize_t n = read_wait(m, buf, 10);
    sc_check(n > 0 && memcmp(buf, "from-tty\r\n", (size_t)n) == 0, "the master reads what the child wrote to /dev/tty",
             "%zd %.10s", n, buf);
    sc_check(write(m, "input\n", 6) == 6, "the parent types a line", "errno %d", errno);
    cf_collect("child", child);
    return sc_done();
}
