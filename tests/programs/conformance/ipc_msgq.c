/* A System V message queue holding three messages of two types at the checkpoint: after restore
 * they are received by type, in order. */
#include "cf.h"
#include <sys/ipc.h>
#include <sys/msg.h>

struct m { long type; char text[16]; };

int main(int argc, char **argv)
{
    cf_init(argc, argv);
    int q = msgget(IPC_PRIVATE, IPC_CREAT | 0600);
    struct m a = {1, "first"}, b = {2, "second"}, c = {1, "third"};
    msgsnd(q, &a, sizeof a.text, 0);
    msgsnd(q, &b, sizeof b.text, 0);
    msgsnd(q, &c, sizeof c.text, 0);
    sc_ready();
    sc_wait_go();
    struct m r;
    sc_check(msgrcv(q, &r, sizeof r.text, 2, IPC_NOWAIT) > 0 && strcmp(r.text, "second") == 0, "type 2", "%s", r.text);
    sc_check(msgrcv(q, &r, sizeof r.text, 1, IPC_NOWAIT) > 0 && strcmp(r.text, "first") == 0, "type 1 first", "%s",
             r.text);
    sc_check(msgrcv(q, &r, sizeof r.text, 0, IPC_NOWAIT) > 0 && strcmp(r.text, "third") == 0, "then third", "%s",
             r.text);
    msgctl(q, IPC_RMID, NULL);
    return sc_done();
}
