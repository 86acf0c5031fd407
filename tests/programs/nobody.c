/* A job started as nobody with nothing (by setpriv: uid and gid 65534, groups [65534], every
 * capability set empty, the bounding set too, no_new_privs set; by prlimit: hard limits below
 * root's).  After a restore by root it checks that its /proc/self/status credential lines read
 * exactly as they did at the start (a restore never gives it more than it had), the rest a program
 * sees of them (credstate.h), its resource limits, and that it holds no descriptor it did not.
 *   nobody OUT READY GO */
#include "selfcheck.h"
#include "credstate.h"
#include <fcntl.h>
#include <sys/resource.h>

static const char *const KEYS[] = {"Uid", "Gid", "Groups", "CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb",
                                   "NoNewPrivs"};
#define NKEYS (sizeof KEYS / sizeof KEYS[0])

struct status_lines {
    char value[NKEYS][256];
};

static void status_read(struct status_lines *s)
{
    memset(s, 0, sizeof *s);
    FILE *f = fopen("/proc/self/status", "r");
    char line[512];
    if (!f) return;
    while (fgets(line, sizeof line, f))
        for (size_t k = 0; k < NKEYS; k++) {
            size_t n = strlen(KEYS[k]);
            if (!strncmp(line, KEYS[k], n) && line[n] == ':') {
                char *v = line + n + 1;
                v += strspn(v, " \t");
                size_t end = strcspn(v, "\n");
                while (end && (v[end - 1] == ' ' || v[end - 1] == '\t')) end--;   /* Groups ends in a space */
                v[end] = 0;
                snprintf(s->value[k], sizeof s->value[k], "%s", v);
            }
        }
    fclose(f);
}

static const char *value(const struct status_lines *s, const char *key)
{
    for (size_t k = 0; k < NKEYS; k++)
        if (!strcmp(KEYS[k], key)) return s->value[k];
    return "";
}

#define MAX_FD 1024

/* Every open descriptor as "N -> target" lines (before OUT is opened: sc_check opens it). */
static void fds_read(char *buf, size_t size)
{
    size_t used = 0;
    buf[0] = 0;
    for (int fd = 0; fd < MAX_FD; fd++) {
        if (fcntl(fd, F_GETFD) < 0) continue;
        char link[64], target[512] = {0};
        snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
        if (readlink(link, target, sizeof target - 1) < 0) snprintf(target, sizeof target, "?");
        used += (size_t)snprintf(buf + used, size - used, "%d -> %s; ", fd, target);
        if (used >= size) break;
    }
}

static void limits_compare(const struct rlimit *before)
{
    for (int r = 0; r < RLIM_NLIMITS; r++) {
        struct rlimit now;
        getrlimit(r, &now);
        char what[32];
        snprintf(what, sizeof what, "rlimit %d", r);
        sc_check(now.rlim_cur == before[r].rlim_cur && now.rlim_max == before[r].rlim_max, what,
                 "was %llu:%llu, now %llu:%llu", (unsigned long long)before[r].rlim_cur,
                 (unsigned long long)before[r].rlim_max, (unsigned long long)now.rlim_cur,
                 (unsigned long long)now.rlim_max);
    }
}

int main(int argc, char **argv)
{
    static char fds_before[8192], fds_after[8192];
    struct rlimit limits[RLIM_NLIMITS];
    struct status_lines before, after;
    struct credstate cbefore, cafter;
    sc_init(argc, argv);
    status_read(&before);
    credstate_read(&cbefore);
    for (int r = 0; r < RLIM_NLIMITS; r++)
        getrlimit(r, &limits[r]);
    fds_read(fds_before, sizeof fds_before);
    sc_ready();
    sc_wait_go();
    fds_read(fds_after, sizeof fds_after);
    status_read(&after);
    credstate_read(&cafter);
    sc_check(!strcmp(fds_before, fds_after), "the same descriptors, no more", "were '%s', now '%s'", fds_before,
             fds_after);
    limits_compare(limits);
    for (size_t k = 0; k < NKEYS; k++) {
        char what[64];
        snprintf(what, sizeof what, "status %s", KEYS[k]);
        sc_check(before.value[k][0] && !strcmp(before.value[k], after.value[k]), what, "was '%s', now '%s'",
                 before.value[k], after.value[k]);
    }
    credstate_compare("job", &cbefore, &cafter);
    const char *zero = "0000000000000000";
    sc_check(!strcmp(value(&before, "Uid"), "65534\t65534\t65534\t65534") &&
             !strcmp(value(&before, "Gid"), "65534\t65534\t65534\t65534") &&
             !strcmp(value(&before, "Groups"), "65534"),
             "started as nobody", "Uid '%s' Gid '%s' Groups '%s'", value(&before, "Uid"), value(&before, "Gid"),
             value(&before, "Groups"));
    sc_check(!strcmp(value(&before, "CapInh"), zero) && !strcmp(value(&before, "CapPrm"), zero) &&
             !strcmp(value(&before, "CapEff"), zero) && !strcmp(value(&before, "CapBnd"), zero) &&
             !strcmp(value(&before, "CapAmb"), zero) && !strcmp(value(&before, "NoNewPrivs"), "1"),
             "started with nothing", "CapPrm %s CapBnd %s NoNewPrivs %s", value(&before, "CapPrm"),
             value(&before, "CapBnd"), value(&before, "NoNewPrivs"));
    sc_check(limits[RLIMIT_NOFILE].rlim_max == 1024 && limits[RLIMIT_CORE].rlim_max == 0,
             "started with lowered hard limits", "nofile %llu core %llu",
             (unsigned long long)limits[RLIMIT_NOFILE].rlim_max, (unsigned long long)limits[RLIMIT_CORE].rlim_max);
    return sc_done();
}
