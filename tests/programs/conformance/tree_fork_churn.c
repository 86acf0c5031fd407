/* A process forking without pause (each child exits at once with a status of its own, reaped
 * by its parent) while another thread computes: a checkpoint that meets children being born and
 * dying must take a consistent tree; after restore every status reaped is still the one expected
 * and no child is left over, or lost (wait reports exactly the children forked). */
#include "cf.h"
#include <pthread.h>

static volatile uint64_t spins;
static volatile int stop;

static void *spin(void *arg)
{
    (void)arg;
    uint64_t x = 1;
    while (!stop) x = x * 6364136223846793005ULL + 1, spins++;
    return (void *)(uintptr_t)x;
}

int main(int argc, char **argv)
{
    cf_init(argc, argv);
    pthread_t t;
    pthread_create(&t, NULL, spin, NULL);
    uint64_t turn = 0, wrong = 0, lost = 0;
    sc_ready();
    while (access(sc_go_path, F_OK) != 0) {
        turn++;
        pid_t c = fork();
        if (c < 0) return 5;
        if (c == 0) _exit((int)(turn & 0x7f));
        int st;
        pid_t got;
        do got = waitpid(c, &st, 0); while (got < 0 && errno == EINTR);
        if (got != c) lost++;
        else if (!WIFEXITED(st) || WEXITSTATUS(st) != (int)(turn & 0x7f)) wrong++;
    }
    stop = 1;
    pthread_join(t, NULL);
    sc_check(wrong == 0 && lost == 0, "every child reaped with its status", "%llu turns, %llu wrong, %llu lost",
             (unsigned long long)turn, (unsigned long long)wrong, (unsigned long long)lost);
    errno = 0;
    sc_check(waitpid(-1, NULL, WNOHANG) < 0 && errno == ECHILD, "no child left over", "errno %d", errno);
    sc_check(spins > 0, "the thread ran", "%llu", (unsigned long long)spins);
    return sc_done();
}
