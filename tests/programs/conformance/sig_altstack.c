/* sigaltstack(2) and an SA_ONSTACK handler: the alternate stack is the same after restore, the
 * handler runs on it (a local's address inside it), and the stack is not in use outside it. */
#include "cf.h"

static char altstack[64 * 1024];
static volatile uintptr_t handler_sp;
static volatile int onstack_flag;
static void on_usr1(int sig)
{
    (void)sig;
    volatile char local;
    handler_sp = (uintptr_t)&local;
    stack_t cur;
    sigaltstack(NULL, &cur);
    onstack_flag = cur.ss_flags & SS_ONSTACK;
}

int main(int argc, char **argv)
{
    cf_init(argc, argv);
    stack_t ss = {.ss_sp = altstack, .ss_size = sizeof altstack, .ss_flags = 0};
    sigaltstack(&ss, NULL);
    struct sigaction sa = {.sa_handler = on_usr1, .sa_flags = SA_ONSTACK};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGUSR1, &sa, NULL);
    stack_t before;
    sigaltstack(NULL, &before);
    sc_ready();
    sc_wait_go();
    stack_t now;
    sigaltstack(NULL, &now);
    sc_check(now.ss_sp == before.ss_sp && now.ss_size == before.ss_size && now.ss_flags == before.ss_flags,
             "sigaltstack", "sp %p size %zu flags %d", now.ss_sp, now.ss_size, now.ss_flags);
    raise(SIGUSR1);
    sc_check(handler_sp >= (uintptr_t)altstack && handler_sp < (uintptr_t)altstack + sizeof altstack && onstack_flag,
             "handler ran on the alternate stack", "sp %#lx", (unsigned long)handler_sp);
    return sc_done();
}
