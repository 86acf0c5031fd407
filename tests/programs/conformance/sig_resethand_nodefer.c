/* SA_RESETHAND: the handler runs once after restore, then the disposition is SIG_DFL.
 * SA_NODEFER: the handler can be re-entered by its own signal (nested depth 2). */
#include "cf.h"

static volatile sig_atomic_t once, depth, max_depth;
static void on_once(int sig) { (void)sig; once++; }
static void on_nested(int sig)
{
    depth++;
    if (depth > max_depth) max_depth = depth;
    if (depth == 1) raise(sig);
    depth--;
}

int main(int argc, char **argv)
{
    cf_init(argc, argv);
    struct sigaction sa = {.sa_handler = on_once, .sa_flags = SA_RESETHAND};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGUSR1, &sa, NULL);
    sa.sa_handler = on_nested;
    sa.sa_flags = SA_NODEFER;
    sigaction(SIGUSR2, &sa, NULL);
    sc_ready();
    sc_wait_go();
    raise(SIGUSR1);
    struct sigaction now;
    sigaction(SIGUSR1, NULL, &now);
    sc_check(once == 1 && now.sa_handler == SIG_DFL, "SA_RESETHAND: once, then default", "ran %d, handler %p", once,
             (void *)now.sa_handler);
    raise(SIGUSR2);
    sc_check(max_depth == 2, "SA_NODEFER: re-entered", "depth %d", max_depth);
    return sc_done();
}
