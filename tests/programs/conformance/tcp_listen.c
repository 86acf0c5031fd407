/* A listening TCP socket on the loopback (engine/inet.py): after the restore it still accepts. */
#include "cf.h"
#include <netinet/in.h>
#include <sys/socket.h>

int main(int argc, char **argv)
{
    cf_init(argc, argv);
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t l = sizeof a;
    if (bind(s, (struct sockaddr *)&a, sizeof a) || listen(s, 4) || getsockname(s, (struct sockaddr *)&a, &l)) return 3;
    sc_ready();
    sc_wait_go();
    int c = socket(AF_INET, SOCK_STREAM, 0);
    sc_check(connect(c, (struct sockaddr *)&a, sizeof a) == 0 && accept(s, NULL, NULL) >= 0, "still accepts", "%d",
             errno);
    return sc_done();
}
