/* A Unix stream socket bound to a path and listening, with one connection accepted: after restore
 * the connection still carries bytes. */
#include "cf.h"
#include <sys/socket.h>
#include <sys/un.h>

int main(int argc, char **argv)
{
    cf_init(argc, argv);
    int s = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    snprintf(a.sun_path, sizeof a.sun_path, "%s", cf_path("sock"));
    if (bind(s, (struct sockaddr *)&a, sizeof a) || listen(s, 4)) return 3;
    int c = socket(AF_UNIX, SOCK_STREAM, 0);
    if (connect(c, (struct sockaddr *)&a, sizeof a)) return 3;
    int acc = accept(s, NULL, NULL);
    sc_ready();
    sc_wait_go();
    char ch;
    sc_check(send(c, "x", 1, 0) == 1 && recv(acc, &ch, 1, 0) == 1, "connection still works", "%s", "");
    return sc_done();
}
