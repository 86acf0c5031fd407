/* A job started as an unprivileged user with capabilities dropped (by setpriv: uid and gid 65534,
 * no groups, cap_net_bind_service inheritable and ambient so also permitted and effective, two
 * capabilities out of the bounding set).  After restore it checks its ids, groups, capability sets,
 * securebits and no_new_privs against what it had at the start, and that the set-up took.
 *   nonroot OUT READY GO */
#include "selfcheck.h"
#include "credstate.h"

int main(int argc, char **argv)
{
    struct credstate before, after;
    sc_init(argc, argv);
    credstate_read(&before);
    sc_ready();
    sc_wait_go();
    credstate_read(&after);
    credstate_compare("job", &before, &after);
    uint64_t bind = 1ull << CAP_NET_BIND_SERVICE;
    sc_check(before.uid[0] == 65534 && before.uid[1] == 65534 && before.gid[0] == 65534 && before.ngroups == 0,
             "started unprivileged", "uid %u euid %u gid %u, %d groups", before.uid[0], before.uid[1],
             before.gid[0], before.ngroups);
    sc_check(before.amb == bind && before.prm == bind && before.eff == bind && before.inh == bind &&
             !(before.bnd & (1ull << CAP_SYS_BOOT)) && !(before.bnd & (1ull << CAP_MKNOD)),
             "started with its capabilities", "ambient %#llx permitted %#llx bounding %#llx",
             (unsigned long long)before.amb, (unsigned long long)before.prm, (unsigned long long)before.bnd);
    return sc_done();
}
