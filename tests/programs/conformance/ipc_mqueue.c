/* Must be refused (incr has no support for them): a POSIX message queue descriptor (mq_open) with
 * two messages queued.  After the refusal: attributes, messages in priority order. */
#include "cf.h"
#include <mqueue.h>

int main(int argc, char **argv)
{
    cf_init(argc, argv);
    char name[64];
    snprintf(name, sizeof name, "/incr-cf-%d", getpid());
    struct mq_attr attr = {.mq_maxmsg = 4, .mq_msgsize = 32};
    mqd_t q = mq_open(name, O_RDWR | O_CREAT | O_NONBLOCK, 0600, &attr);
    if (q < 0) return 3;
    mq_send(q, "low", 3, 1);
    mq_send(q, "high", 4, 9);
    sc_ready();
    sc_wait_go();
    struct mq_attr now;
    mq_getattr(q, &now);
    sc_check(now.mq_maxmsg == 4 && now.mq_msgsize == 32 && now.mq_curmsgs == 2 && (now.mq_flags & O_NONBLOCK),
             "attributes", "max %ld size %ld cur %ld flags %#lx", now.mq_maxmsg, now.mq_msgsize, now.mq_curmsgs,
             now.mq_flags);
    char buf[64];
    unsigned prio;
    sc_check(mq_receive(q, buf, sizeof buf, &prio) == 4 && prio == 9, "high priority first", "%u", prio);
    sc_check(mq_receive(q, buf, sizeof buf, &prio) == 3 && prio == 1, "then low", "%u", prio);
    mq_unlink(name);
    return sc_done();
}
