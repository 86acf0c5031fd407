/* Half-closed TCP connections inside one process (engine/inet.py), checked after a restore.
 *
 *   tcphalf OUT READY GO
 *
 * Four connections on the loopback, both ends in this process, each left as follows:
 *   1 (IPv4) and 2 (IPv6): the client sent a line and shut down for sending (FIN wait 2); the
 *     server read nothing (close wait: the line, then its end of file) and sent a line unread;
 *   3: the client, non-blocking, wrote a pattern until EAGAIN and shut down for sending: its FIN
 *     waits behind bytes never sent (FIN wait 1), the server read none (established);
 *   4: the client shut down for sending (FIN wait 2); then the server, non-blocking, wrote a
 *     pattern until EAGAIN and shut down too (last ACK: its FIN waits behind bytes never sent).
 * After the restore: every state as it was, every byte arrives once and in order followed by
 * the end of file, the open directions still carry bytes, F_GETFL as it was, and no end saw a
 * reset (SO_ERROR 0). */
#include "selfcheck.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>

static unsigned char pat(size_t i, int k) { return (unsigned char)(i * (size_t)(5 + 2 * k) + (size_t)k); }

static int tcp_state(int fd)
{
    struct tcp_info ti;
    socklen_t len = sizeof ti;
    return getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) ? -1 : ti.tcpi_state;
}

static void pair(int v6, int *client, int *server)
{
    struct sockaddr_storage ss = {0};
    socklen_t len;
    int l = socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM, 0);
    if (v6) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        a->sin6_family = AF_INET6;
        a->sin6_addr = in6addr_loopback;
        len = sizeof *a;
    } else {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        a->sin_family = AF_INET;
        a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        len = sizeof *a;
    }
    if (l < 0 || bind(l, (struct sockaddr *)&ss, len) || listen(l, 1) || getsockname(l, (struct sockaddr *)&ss, &len))
        exit(3);
    *client = socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM, 0);
    if (*client < 0 || connect(*client, (struct sockaddr *)&ss, len)) exit(3);
    *server = accept(l, NULL, NULL);
    if (*server < 0) exit(3);
    close(l);
}

/* Writes the pattern until the peer's window and both buffers are full; the count. */
static size_t fill(int fd, int k)
{
    static unsigned char buf[65536];
    size_t total = 0;
    if (fcntl(fd, F_SETFL, O_NONBLOCK)) exit(3);
    for (;;) {
        for (size_t i = 0; i < sizeof buf; i++) buf[i] = pat(total + i, k);
        ssize_t n = write(fd, buf, sizeof buf);
        if (n < 0 && errno == EAGAIN) {
            struct pollfd p = {fd, POLLOUT, 0};
            if (poll(&p, 1, 50) == 0) return total;     /* nothing drains it: full */
            continue;
        }
        if (n <= 0) exit(3);
        total += (size_t)n;
    }
}

/* Reads until the end of file (blocking); whether exactly `want` (or the pattern k of `count` bytes) came. */
static void read_to_eof(int fd, const char *what, const char *want, int k, size_t count)
{
    static unsigned char buf[65536];
    size_t got = 0, bad_at = (size_t)-1;
    int fl = fcntl(fd, F_GETFL);
    fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
    for (;;) {
        ssize_t n = read(fd, buf, sizeof buf);
        if (n < 0) {
            sc_check(0, what, "read: %s after %zu bytes", strerror(errno), got);
            return;
        }
        if (n == 0) break;
        for (ssize_t i = 0; i < n; i++) {
            unsigned char c = want ? (got + (size_t)i < strlen(want) ? (unsigned char)want[got + (size_t)i] : 0)
                                   : pat(got + (size_t)i, k);
            if (buf[i] != c && bad_at == (size_t)-1) bad_at = got + (size_t)i;
        }
        got += (size_t)n;
    }
    fcntl(fd, F_SETFL, fl);
    size_t len = want ? strlen(want) : count;
    sc_check(got == len && bad_at == (size_t)-1, what, "%zu bytes (want %zu), first wrong at %zd", got, len,
             (ssize_t)bad_at);
}

static void no_reset(int fd, const char *what)
{
    int err = -1;
    socklen_t len = sizeof err;
    getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
    sc_check(err == 0, what, "SO_ERROR %s", strerror(err));
}

int main(int argc, char **argv)
{
    sc_init(argc, argv);
    int c[4], s[4];
    for (int i = 0; i < 4; i++) pair(i == 1, &c[i], &s[i]);
    for (int i = 0; i < 2; i++) {
        if (write(c[i], "from the client\n", 16) != 16 || shutdown(c[i], SHUT_WR) ||
            write(s[i], "from the server\n", 16) != 16)
            return 3;
    }
    size_t filled3 = fill(c[2], 3);
    if (shutdown(c[2], SHUT_WR)) return 3;
    if (shutdown(c[3], SHUT_WR)) return 3;
    struct pollfd p = {s[3], POLLRDHUP, 0};
    if (poll(&p, 1, 5000) != 1) return 3;               /* the client's FIN has arrived */
    size_t filled4 = fill(s[3], 4);
    if (shutdown(s[3], SHUT_WR)) return 3;
    int want[4][2] = {{TCP_FIN_WAIT2, TCP_CLOSE_WAIT}, {TCP_FIN_WAIT2, TCP_CLOSE_WAIT},
                      {TCP_FIN_WAIT1, TCP_ESTABLISHED}, {TCP_FIN_WAIT2, TCP_LAST_ACK}};
    int flags[4][2];
    for (int i = 0; i < 4; i++) {
        if (tcp_state(c[i]) != want[i][0] || tcp_state(s[i]) != want[i][1]) {
            fprintf(stderr, "connection %d: states %d %d before the checkpoint\n", i + 1, tcp_state(c[i]),
                    tcp_state(s[i]));
            return 4;
        }
        flags[i][0] = fcntl(c[i], F_GETFL);
        flags[i][1] = fcntl(s[i], F_GETFL);
    }
    sc_ready();
    sc_wait_go();

    char what[96];
    for (int i = 0; i < 4; i++) {
        snprintf(what, sizeof what, "connection %d: states as they were", i + 1);
        sc_check(tcp_state(c[i]) == want[i][0] && tcp_state(s[i]) == want[i][1], what, "%d %d, want %d %d",
                 tcp_state(c[i]), tcp_state(s[i]), want[i][0], want[i][1]);
        snprintf(what, sizeof what, "connection %d: F_GETFL of both ends", i + 1);
        sc_check(fcntl(c[i], F_GETFL) == flags[i][0] && fcntl(s[i], F_GETFL) == flags[i][1], what, "%#x %#x",
                 fcntl(c[i], F_GETFL), fcntl(s[i], F_GETFL));
    }
    for (int i = 0; i < 2; i++) {
        snprintf(what, sizeof what, "connection %d: the server reads the line, then end of file", i + 1);
        read_to_eof(s[i], what, "from the client\n", 0, 0);
        if (write(s[i], "and more\n", 9) != 9 || shutdown(s[i], SHUT_WR)) sc_check(0, "server writes", "%s",
                                                                                   strerror(errno));
        snprintf(what, sizeof what, "connection %d: the client reads both lines, then end of file", i + 1);
        read_to_eof(c[i], what, "from the server\nand more\n", 0, 0);
    }
    read_to_eof(s[2], "connection 3: the server reads every byte written, then end of file", NULL, 3, filled3);
    read_to_eof(c[3], "connection 4: the client reads every byte written, then end of file", NULL, 4, filled4);
    for (int i = 0; i < 4; i++) {
        snprintf(what, sizeof what, "connection %d: no reset", i + 1);
        no_reset(c[i], what);
        no_reset(s[i], what);
    }
    return sc_done();
}
