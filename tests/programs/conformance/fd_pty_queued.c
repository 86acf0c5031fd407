/* Pseudo-terminals the job made, with bytes waiting to be read in their line disciplines:
 *  - a canonical one (echo off): written into its master, two lines, a line ended by VEOF, a VEOF
 *    alone, and a line begun ("par"); written by its slave, a line the master has not read;
 *  - a raw one (cfmakeraw): bytes the slave would take for signals or editing in canonical mode,
 *    and bytes the slave wrote, unread by the master;
 *  - one whose slave wrote a line and was closed: the master reads it, then EIO.
 * After restore: every read returns what it would have (the lines one by one, VEOF as a read of
 * the line without it, then 0; the line begun ends when "tial\n" follows it: "partial\n"), nothing
 * was echoed, the termios are as set, and the closed one reads EIO once its line is read. */
#define _GNU_SOURCE
#include "cf.h"
#include <poll.h>
#include <sys/ioctl.h>
#include <termios.h>

static int open_pair(int *s)
{
    int m = posix_openpt(O_RDWR | O_NOCTTY);
    if (m < 0 || grantpt(m) || unlockpt(m)) return -1;
    *s = open(ptsname(m), O_RDWR | O_NOCTTY);
    return *s < 0 ? -1 : m;
}

static int ready(int fd, int ms)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    return poll(&p, 1, ms) == 1 && (p.revents & POLLIN);
}

static void check_read(int fd, const char *want, size_t n, const char *what)
{
    char buf[256] = {0};
    ssize_t got = ready(fd, 5000) ? read(fd, buf, sizeof buf) : -2;
    sc_check(got == (ssize_t)n && memcmp(buf, want, n) == 0, what, "read %zd bytes: %.*s", got,
             got > 0 ? (int)got : 0, buf);
}

static int write_all(int fd, const char *data, size_t n)
{
    return write(fd, data, n) == (ssize_t)n ? 0 : -1;
}

int main(int argc, char **argv)
{
    cf_init(argc, argv);
    int cs, rs, hs;
    int cm = open_pair(&cs), rm = open_pair(&rs), hm = open_pair(&hs);
    if (cm < 0 || rm < 0 || hm < 0) return 3;

    struct termios ct, rt;
    if (tcgetattr(cs, &ct) || tcgetattr(rs, &rt)) return 3;
    ct.c_lflag &= ~(tcflag_t)ECHO;
    cfmakeraw(&rt);
    rt.c_cc[VMIN] = 1;
    rt.c_cc[VTIME] = 0;
    if (tcsetattr(cs, TCSANOW, &ct) || tcsetattr(rs, TCSANOW, &rt)) return 3;

    char eof = (char)ct.c_cc[VEOF];
    char typed[64];
    int n = snprintf(typed, sizeof typed, "typed\nsecond\neof-ended%c%cpar", eof, eof);
    static const char raw_in[] = "raw\0\x7f\x03\x1a\x15 bytes\r\n";
    static const char raw_out[] = "\x01\x02 out\n";
    if (write_all(cm, typed, (size_t)n) || write_all(cs, "out\n", 4)
        || write_all(rm, raw_in, sizeof raw_in - 1) || write_all(rs, raw_out, sizeof raw_out - 1)
        || write_all(hs, "bye\n", 4))
        return 3;
    close(hs);
    /* Everything in the line disciplines (their input is handed over by a kernel worker). */
    if (!ready(cs, 5000) || !ready(cm, 5000) || !ready(rs, 5000) || !ready(rm, 5000) || !ready(hm, 5000))
        return 3;
    int queued = 0;
    ioctl(rs, FIONREAD, &queued);
    for (int i = 0; i < 500 && queued < (int)sizeof raw_in - 1; i++, usleep(1000))
        ioctl(rs, FIONREAD, &queued);

    sc_ready();
    sc_wait_go();

    check_read(cs, "typed\n", 6, "the canonical slave reads its first line");
    check_read(cs, "second\n", 7, "then its second");
    check_read(cs, "eof-ended", 9, "then the line VEOF ended, without it");
    check_read(cs, "", 0, "then the VEOF alone: a read of 0");
    sc_check(!ready(cs, 0), "the line begun is not readable yet", "%s", "");
    if (write_all(cm, "tial\n", 5)) return 3;
    check_read(cs, "partial\n", 8, "the line begun ends with what follows it");
    check_read(cm, "out\r\n", 5, "the canonical master reads what its slave wrote");
    sc_check(!ready(cm, 100), "nothing was echoed", "%s", "");
    struct termios now;
    sc_check(tcgetattr(cs, &now) == 0 && now.c_lflag == ct.c_lflag && now.c_iflag == ct.c_iflag
             && now.c_oflag == ct.c_oflag && memcmp(now.c_cc, ct.c_cc, sizeof ct.c_cc) == 0,
             "the canonical termios as set", "lflag %#o iflag %#o oflag %#o", now.c_lflag, now.c_iflag, now.c_oflag);

    check_read(rs, raw_in, sizeof raw_in - 1, "the raw slave reads the bytes as written");
    check_read(rm, raw_out, sizeof raw_out - 1, "the raw master reads what its slave wrote, unmapped");
    sc_check(tcgetattr(rs, &now) == 0 && now.c_lflag == rt.c_lflag && now.c_iflag == rt.c_iflag
             && now.c_oflag == rt.c_oflag, "the raw termios as set", "lflag %#o iflag %#o", now.c_lflag, now.c_iflag);

    check_read(hm, "bye\r\n", 5, "the master of the closed slave reads its last line");
    char c;
    errno = 0;
    ssize_t r = read(hm, &c, 1);
    sc_check(r < 0 && errno == EIO, "then EIO: the slave is closed", "read %zd errno %d", r, errno);
    return sc_done();
}
