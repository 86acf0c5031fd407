/* Session, process group and controlling terminal across a restore:  session OUT READY GO
 * The process forks a child that stays in its process group; both wait for GO.  Then it checks
 * that it leads its session and its group exactly when it did before the checkpoint, that the
 * child still shares its group and session, that it has a controlling terminal exactly when it
 * had one, and that no SIGHUP arrived (a restore that joined a terminal's session gets one
 * when that terminal closes). */
#include "selfcheck.h"
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>

static volatile sig_atomic_t hangups;

static void on_hup(int sig) { hangups++; }

static int has_ctty(void)
{
    int fd = open("/dev/tty", O_RDWR | O_NOCTTY);
    if (fd < 0)
        return 0;
    close(fd);
    return 1;
}

int main(int argc, char **argv)
{
    sc_init(argc, argv);
    signal(SIGHUP, on_hup);
    pid_t me = getpid();
    int led_session = getsid(0) == me, led_group = getpgrp() == me, had_ctty = has_ctty();
    pid_t child = fork();
    if (child < 0)
        return 6;
    if (child == 0) {
        sc_wait_go();
        _exit(hangups ? 9 : 0);
    }
    sc_ready();
    sc_wait_go();
    sc_check((getsid(0) == me) == led_session, "session leader as before", "getsid %d, pid %d, led: %d",
             getsid(0), me, led_session);
    sc_check((getpgrp() == me) == led_group, "group leader as before", "getpgrp %d, pid %d, led: %d",
             getpgrp(), me, led_group);
    sc_check(getpgid(child) == getpgrp(), "child in our group", "child's group %d, ours %d", getpgid(child),
             getpgrp());
    sc_check(getsid(child) == getsid(0), "child in our session", "child's session %d, ours %d", getsid(child),
             getsid(0));
    sc_check(has_ctty() == had_ctty, "controlling terminal as before", "now %d, before %d", has_ctty(), had_ctty);
    int status = 0;
    sc_check(waitpid(child, &status, 0) == child && WIFEXITED(status) && WEXITSTATUS(status) == 0,
             "child ended well, no SIGHUP", "status %#x", status);
    sc_check(hangups == 0, "no SIGHUP", "%d SIGHUPs", (int)hangups);
    return sc_done();
}
