/* Must be refused (as CRIU does: the bytes wait in a socket no descriptor reaches until accept): a
 * client connected to a listener bound at WORK/sock that sent "early" before being accepted.
 * After the refusal the job is unharmed: accept() yields the connection and its bytes. */
#include "cf.h"
#include <sys/socket.h>
#include <sys/un.h>

int main(int argc, char **argv)
{
    cf_init(argc, argv);
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    if (snprintf(a.sun_path, sizeof a.sun_path, "%s", cf_path("sock")) >= (int)sizeof a.sun_path) return 3;
    int l = socket(AF_UNIX, SOCK_STREAM, 0), c = socket(AF_UNIX, SOCK_STREAM, 0);
    if (bind(l, (struct sockaddr *)&a, sizeof a) || listen(l, 4) || connect(c, (struct sockaddr *)&a, sizeof a) ||
        send(c, "early", 5, 0) != 5) return 3;
    sc_ready();
    sc_wait_go();
    int acc = accept(l, NULL, NULL);
    char buf[8] = {0};
    ssize_t n = acc < 0 ? -1 : recv(acc, buf, sizeof buf, MSG_DONTWAIT);
    sc_check(n == 5 && memcmp(buf, "early", 5) == 0, "the pending connection and its bytes", "%zd %.5s", n, buf);
    return sc_done();
}
