/* Scheduling per thread: SCHED_BATCH with nice 5, an I/O priority and a timer slack; SCHED_IDLE
 * with the idle I/O class; SCHED_FIFO priority 1 with SCHED_RESET_ON_FORK and a real-time I/O
 * priority; SCHED_RR priority 2; SCHED_DEADLINE (2 ms every 20 ms); the main thread SCHED_OTHER
 * with SCHED_RESET_ON_FORK, nice -3, a time slice of its own and a timer slack.  The real-time
 * threads sleep between polls.  After restore each thread checks sched_getattr, ioprio_get,
 * PR_GET_TIMERSLACK and its nice value against what it had.   sched OUT READY GO */
#include "selfcheck.h"
#include <errno.h>
#include <linux/ioprio.h>
#include <linux/sched.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>

struct sched_attr {                     /* <linux/sched/types.h> clashes with glibc's <sched.h> */
    uint32_t size, sched_policy;
    uint64_t sched_flags;
    int32_t sched_nice;
    uint32_t sched_priority;
    uint64_t sched_runtime, sched_deadline, sched_period;
    uint32_t sched_util_min, sched_util_max;
};

struct schedstate {
    struct sched_attr attr;
    int ioprio, nice;
    long slack;
};

struct setup {
    const char *name;
    uint32_t policy;
    uint64_t flags;
    int nice;
    uint32_t priority;
    uint64_t runtime, deadline, period;
    int ioprio;
    long slack;                         /* 0: leave */
    struct schedstate before, after;
    int failed;
};

#define IOP(class, data) ((int)IOPRIO_PRIO_VALUE(class, data))
static struct setup setups[] = {
    {"main thread", SCHED_OTHER, SCHED_FLAG_RESET_ON_FORK, -3, 0, 3000000, 0, 0, IOP(IOPRIO_CLASS_BE, 2), 777777},
    {"batch thread", SCHED_BATCH, 0, 5, 0, 0, 0, 0, IOP(IOPRIO_CLASS_BE, 6), 200000},
    {"idle thread", SCHED_IDLE, 0, 0, 0, 0, 0, 0, IOP(IOPRIO_CLASS_IDLE, 0), 0},
    {"fifo thread", SCHED_FIFO, SCHED_FLAG_RESET_ON_FORK, 0, 1, 0, 0, 0, IOP(IOPRIO_CLASS_RT, 3), 0},
    {"rr thread", SCHED_RR, 0, 0, 2, 0, 0, 0, IOP(IOPRIO_CLASS_BE, 0), 0},
    {"deadline thread", SCHED_DEADLINE, 0, 0, 0, 2000000, 20000000, 20000000, IOP(IOPRIO_CLASS_BE, 4), 0},
};
#define N (int)(sizeof setups / sizeof setups[0])
static volatile int set_count, go;

static void read_state(struct schedstate *s)
{
    memset(s, 0, sizeof *s);
    syscall(SYS_sched_getattr, 0, &s->attr, sizeof s->attr, 0);
    s->ioprio = (int)syscall(SYS_ioprio_get, IOPRIO_WHO_PROCESS, 0);
    errno = 0;
    s->nice = getpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid));
    s->slack = prctl(PR_GET_TIMERSLACK, 0, 0, 0, 0);
}

static int apply(struct setup *u)
{
    if (setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), u->nice))
        return 1;
    if (u->slack && prctl(PR_SET_TIMERSLACK, u->slack, 0, 0, 0))
        return 2;
    if (syscall(SYS_ioprio_set, IOPRIO_WHO_PROCESS, 0, u->ioprio))
        return 3;
    struct sched_attr a = {.size = sizeof a, .sched_policy = u->policy, .sched_flags = u->flags,
                           .sched_nice = u->nice, .sched_priority = u->priority, .sched_runtime = u->runtime,
                           .sched_deadline = u->deadline, .sched_period = u->period};
    if (syscall(SYS_sched_setattr, 0, &a, 0))
        return 4;
    return 0;
}

static void *thread_main(void *arg)
{
    struct setup *u = arg;
    u->failed = apply(u);
    read_state(&u->before);
    __atomic_add_fetch(&set_count, 1, __ATOMIC_SEQ_CST);
    while (!go)
        usleep(2000);
    read_state(&u->after);
    return NULL;
}

static void compare(const struct setup *u)
{
    const struct schedstate *a = &u->before, *b = &u->after;
    char what[96];
#define CHECK(field, fmt, x, y) do { snprintf(what, sizeof what, "%s %s", u->name, field); \
        sc_check((x) == (y), what, "was " fmt ", now " fmt, x, y); } while (0)
    CHECK("set up", "%d", 0, u->failed);
    CHECK("policy", "%u", a->attr.sched_policy, b->attr.sched_policy);
    CHECK("policy as set", "%u", u->policy, b->attr.sched_policy);
    CHECK("flags", "%#llx", (unsigned long long)a->attr.sched_flags, (unsigned long long)b->attr.sched_flags);
    CHECK("priority", "%u", a->attr.sched_priority, b->attr.sched_priority);
    CHECK("runtime", "%llu", (unsigned long long)a->attr.sched_runtime, (unsigned long long)b->attr.sched_runtime);
    CHECK("deadline", "%llu", (unsigned long long)a->attr.sched_deadline, (unsigned long long)b->attr.sched_deadline);
    CHECK("period", "%llu", (unsigned long long)a->attr.sched_period, (unsigned long long)b->attr.sched_period);
    CHECK("sched_getattr nice", "%d", a->attr.sched_nice, b->attr.sched_nice);
    CHECK("nice", "%d", a->nice, b->nice);
    CHECK("ioprio", "%#x", a->ioprio, b->ioprio);
    CHECK("timer slack", "%ld", a->slack, b->slack);
#undef CHECK
}

int main(int argc, char **argv)
{
    pthread_t t[N];
    sc_init(argc, argv);
    for (int i = 1; i < N; i++)
        if (pthread_create(&t[i], NULL, thread_main, &setups[i]))
            return 3;
    while (set_count < N - 1)
        usleep(1000);
    setups[0].failed = apply(&setups[0]);
    read_state(&setups[0].before);
    sc_ready();
    sc_wait_go();
    read_state(&setups[0].after);
    go = 1;
    for (int i = 1; i < N; i++)
        pthread_join(t[i], NULL);
    for (int i = 0; i < N; i++)
        compare(&setups[i]);
    return sc_done();
}
