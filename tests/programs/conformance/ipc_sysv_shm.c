/* A System V shared memory segment attached twice (read-write and read-only) with data: same id,
 * same addresses, same data, one segment (a write through one attachment shows in the other),
 * and shmctl(IPC_STAT) reports two attachments. */
#include "cf.h"
#include <sys/ipc.h>
#include <sys/shm.h>

int main(int argc, char **argv)
{
    cf_init(argc, argv);
    int id = shmget(IPC_PRIVATE, 3 * 4096, IPC_CREAT | 0600);
    char *a = shmat(id, NULL, 0);
    char *b = shmat(id, NULL, SHM_RDONLY);
    if (a == (void *)-1 || b == (void *)-1) return 3;
    strcpy(a + 5000, "sysv segment");
    sc_ready();
    sc_wait_go();
    sc_check(strcmp(b + 5000, "sysv segment") == 0, "data through the read-only attachment", "%.16s", b + 5000);
    strcpy(a + 100, "after");
    sc_check(strcmp(b + 100, "after") == 0, "both attachments are one segment", "%.8s", b + 100);
    struct shmid_ds ds;
    sc_check(shmctl(id, IPC_STAT, &ds) == 0 && ds.shm_nattch == 2 && ds.shm_segsz == 3 * 4096,
             "IPC_STAT: same id, two attachments", "nattch %lu size %zu errno %d", (unsigned long)ds.shm_nattch,
             ds.shm_segsz, errno);
    sc_check(cf_faults(b, 1), "read-only attachment", "%s", "");
    shmdt(a);
    shmdt(b);
    shmctl(id, IPC_RMID, NULL);
    return sc_done();
}
