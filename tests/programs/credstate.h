/* The credentials of the calling thread, as a program sees them: ids (getresuid, getresgid,
 * setfsuid(-1)), groups, capability sets (capget, and /proc/thread-self/status for the bounding
 * and ambient sets), securebits, keepcaps, no_new_privs, audit ids; and a comparison of two
 * snapshots in sc_check() lines.  Include after selfcheck.h. */
#ifndef INCR_TEST_CREDSTATE_H
#define INCR_TEST_CREDSTATE_H
#include <linux/capability.h>
#include <stdint.h>
#include <string.h>
#include <sys/fsuid.h>
#include <sys/prctl.h>
#include <sys/syscall.h>

struct credstate {
    uid_t uid[4];                     /* real, effective, saved, fs */
    gid_t gid[4];
    int ngroups;
    gid_t groups[64];
    uint64_t eff, prm, inh;           /* capget */
    uint64_t st_eff, st_prm, st_inh, bnd, amb;   /* /proc/thread-self/status */
    int securebits, keepcaps, nnp;
    long loginuid, sessionid;
};

static uint64_t cs_status_hex(const char *key)
{
    FILE *f = fopen("/proc/thread-self/status", "r");
    char line[256];
    uint64_t v = ~0ull;
    size_t n = strlen(key);
    if (!f) return v;
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, key, n) && line[n] == ':')
            v = strtoull(line + n + 1, NULL, 16);
    fclose(f);
    return v;
}

static long cs_read_long(const char *path)
{
    FILE *f = fopen(path, "r");
    long v = -2;
    if (f) {
        if (fscanf(f, "%ld", &v) != 1) v = -3;
        fclose(f);
    }
    return v;
}

static void credstate_read(struct credstate *s)
{
    memset(s, 0, sizeof *s);
    syscall(SYS_getresuid, &s->uid[0], &s->uid[1], &s->uid[2]);
    syscall(SYS_getresgid, &s->gid[0], &s->gid[1], &s->gid[2]);
    s->uid[3] = (uid_t)syscall(SYS_setfsuid, -1);     /* fails, returns the current fsuid */
    s->gid[3] = (gid_t)syscall(SYS_setfsgid, -1);
    s->ngroups = (int)syscall(SYS_getgroups, 64, s->groups);
    struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct d[2];
    memset(d, 0, sizeof d);
    syscall(SYS_capget, &h, d);
    s->eff = d[0].effective | (uint64_t)d[1].effective << 32;
    s->prm = d[0].permitted | (uint64_t)d[1].permitted << 32;
    s->inh = d[0].inheritable | (uint64_t)d[1].inheritable << 32;
    s->st_eff = cs_status_hex("CapEff");
    s->st_prm = cs_status_hex("CapPrm");
    s->st_inh = cs_status_hex("CapInh");
    s->bnd = cs_status_hex("CapBnd");
    s->amb = cs_status_hex("CapAmb");
    s->securebits = prctl(PR_GET_SECUREBITS, 0, 0, 0, 0);
    s->keepcaps = prctl(PR_GET_KEEPCAPS, 0, 0, 0, 0);
    s->nnp = prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0);
    s->loginuid = cs_read_long("/proc/thread-self/loginuid");
    s->sessionid = cs_read_long("/proc/thread-self/sessionid");
}

static void credstate_compare(const char *who, const struct credstate *a, const struct credstate *b)
{
    char what[128];
#define CS_CHECK(field, fmt, x, y) do { \
        snprintf(what, sizeof what, "%s %s", who, field); \
        sc_check((x) == (y), what, "was " fmt ", now " fmt, x, y); } while (0)
    for (int i = 0; i < 4; i++) {
        static const char *names[] = {"real", "effective", "saved", "fs"};
        char f[32];
        snprintf(f, sizeof f, "%s uid", names[i]);
        CS_CHECK(f, "%u", a->uid[i], b->uid[i]);
        snprintf(f, sizeof f, "%s gid", names[i]);
        CS_CHECK(f, "%u", a->gid[i], b->gid[i]);
    }
    snprintf(what, sizeof what, "%s groups", who);
    sc_check(a->ngroups == b->ngroups && !memcmp(a->groups, b->groups, sizeof(gid_t) * (a->ngroups > 0 ? a->ngroups : 0)),
             what, "was %d groups (first %u), now %d (first %u)", a->ngroups, a->groups[0], b->ngroups, b->groups[0]);
    CS_CHECK("effective caps", "%#llx", (unsigned long long)a->eff, (unsigned long long)b->eff);
    CS_CHECK("permitted caps", "%#llx", (unsigned long long)a->prm, (unsigned long long)b->prm);
    CS_CHECK("inheritable caps", "%#llx", (unsigned long long)a->inh, (unsigned long long)b->inh);
    CS_CHECK("CapEff", "%#llx", (unsigned long long)a->st_eff, (unsigned long long)b->st_eff);
    CS_CHECK("CapPrm", "%#llx", (unsigned long long)a->st_prm, (unsigned long long)b->st_prm);
    CS_CHECK("CapInh", "%#llx", (unsigned long long)a->st_inh, (unsigned long long)b->st_inh);
    CS_CHECK("CapBnd", "%#llx", (unsigned long long)a->bnd, (unsigned long long)b->bnd);
    CS_CHECK("CapAmb", "%#llx", (unsigned long long)a->amb, (unsigned long long)b->amb);
    CS_CHECK("securebits", "%#x", a->securebits, b->securebits);
    CS_CHECK("keepcaps", "%d", a->keepcaps, b->keepcaps);
    CS_CHECK("no_new_privs", "%d", a->nnp, b->nnp);
    CS_CHECK("loginuid", "%ld", a->loginuid, b->loginuid);
    CS_CHECK("sessionid", "%ld", a->sessionid, b->sessionid);
#undef CS_CHECK
}
#endif
