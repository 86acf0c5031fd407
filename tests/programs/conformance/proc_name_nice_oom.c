/* The process name (PR_SET_NAME), nice value (+7) and oom_score_adj (raised to 345). */
#include "cf.h"
#include <sys/prctl.h>
#include <sys/resource.h>

int main(int argc, char **argv)
{
    cf_init(argc, argv);
    prctl(PR_SET_NAME, "cf-renamed-job", 0, 0, 0);
    setpriority(PRIO_PROCESS, 0, 7);
    int fd = open("/proc/self/oom_score_adj", O_WRONLY);
    if (fd < 0 || write(fd, "345", 3) != 3) return 3;
    close(fd);
    sc_ready();
    sc_wait_go();
    char name[17] = {0};
    prctl(PR_GET_NAME, name, 0, 0, 0);
    sc_check(strcmp(name, "cf-renamed-job") == 0, "PR_GET_NAME", "%s", name);
    sc_check(strcmp(cf_field("/proc/self/status", "Name:"), "cf-renamed-job") == 0, "status Name", "%s",
             cf_field("/proc/self/status", "Name:"));
    errno = 0;
    int nice = getpriority(PRIO_PROCESS, 0);
    sc_check(nice == 7 && errno == 0, "nice", "%d", nice);
    char adj[16];
    cf_slurp("/proc/self/oom_score_adj", adj, sizeof adj);
    sc_check(atoi(adj) == 345, "oom_score_adj", "%s", adj);
    return sc_done();
}
