/* Queued real-time signals sent without pause by a child to its parent (sigqueue, each with its
 * own number; at most 64 not yet handled, as a program with flow control would) while they are
 * checkpointed: after restore the parent has received every one the child sent, each once, in
 * order -- none lost in a freeze, none delivered twice.  (A queue left to fill up is refused:
 * ref_sig_flood.) */
#include "cf.h"
#include <sys/mman.h>

static volatile uint64_t *mmap_shared_counter(void)
{
    void *m = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) exit(3);
    return m;
}

static void pause_briefly(void)
{
    struct timespec ts = {0, 1000000};
    nanosleep(&ts, NULL);
}

static volatile uint64_t received, out_of_order;
static volatile uint64_t *shared;      /* [0]: sent, [1]: received, for the sender's flow control */

static void on_rt(int sig, siginfo_t *si, void *ctx)
{
    (void)sig, (void)ctx;
    if ((uint64_t)si->si_value.sival_ptr != received + 1) out_of_order++;
    received++;
    shared[1] = received;
}

int main(int argc, char **argv)
{
    cf_init(argc, argv);
    struct sigaction sa = {0};
    sa.sa_sigaction = on_rt;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    sigaction(SIGRTMIN + 1, &sa, NULL);
    shared = mmap_shared_counter();
    volatile uint64_t *sent = &shared[0];
    int gate[2];
    cf_gate_open(gate);
    pid_t parent = getpid();
    pid_t child = fork();
    if (child == 0) {
        cf_gate_pass(gate);
        while (access(sc_go_path, F_OK) != 0) {
            if (*sent - shared[1] >= 64) continue;
            union sigval v = {.sival_ptr = (void *)(uintptr_t)(*sent + 1)};
            if (sigqueue(parent, SIGRTMIN + 1, v) == 0) (*sent)++;
            else if (errno != EAGAIN) _exit(5);
        }
        _exit(0);
    }
    cf_gate_wait(gate, 1);
    sc_ready();
    while (access(sc_go_path, F_OK) != 0) pause_briefly();
    int st;
    waitpid(child, &st, 0);
    sigset_t rt, old;
    sigemptyset(&rt);
    sigaddset(&rt, SIGRTMIN + 1);
    sigprocmask(SIG_BLOCK, &rt, &old);
    sigprocmask(SIG_SETMASK, &old, NULL);        /* anything still queued is delivered here */
    sc_check(WIFEXITED(st) && WEXITSTATUS(st) == 0, "sender finished", "0x%x", st);
    sc_check(received == *sent, "every signal sent arrived", "%llu sent, %llu received", (unsigned long long)*sent,
             (unsigned long long)received);
    sc_check(out_of_order == 0, "each once, in order", "%llu out of order", (unsigned long long)out_of_order);
    sc_check(*sent > 0, "signals were sent", "%llu", (unsigned long long)*sent);
    return sc_done();
}
