/* A POSIX named semaphore unlinked at once (sem_open + sem_unlink: what Python's multiprocessing
 * does for every Lock, Queue and Pool) and shared by a parent and its child, with a second
 * unlinked /dev/shm object held only by a descriptor: after restore both are still one object
 * between the processes, with their values, unlinked (no name under /dev/shm), and a post from
 * one process wakes the other. */
#include "cf.h"
#include <semaphore.h>
#include <sys/mman.h>

int main(int argc, char **argv)
{
    cf_init(argc, argv);
    char name[64], held[64];
    snprintf(name, sizeof name, "/incr-cf-sem-%d", getpid());
    snprintf(held, sizeof held, "/incr-cf-held-%d", getpid());
    sem_t *lock = sem_open(name, O_CREAT | O_EXCL, 0600, 3);
    sem_t *wake = sem_open(name + 0, 0);           /* the same object, opened twice: one mapping */
    if (lock == SEM_FAILED || wake != lock) return 3;
    sem_unlink(name);
    int fd = shm_open(held, O_RDWR | O_CREAT | O_EXCL, 0600);
    if (fd < 0 || ftruncate(fd, 4096) || pwrite(fd, "held", 4, 100) != 4) return 3;
    shm_unlink(held);
    sem_t *go = mmap(NULL, sizeof(sem_t), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    sem_init(go, 1, 0);
    int gate[2];
    cf_gate_open(gate);
    pid_t child = fork();
    if (child == 0) {
        cf_sub("child");
        cf_gate_pass(gate);
        sem_wait(go);                               /* until the parent has checked the value */
        sem_post(lock);
        sc_check(pwrite(fd, "kid!", 4, 200) == 4, "child writes the held object", "%s", "");
        _exit(sc_done());
    }
    cf_gate_wait(gate, 1);
    sem_wait(lock);                                 /* value 2 at the checkpoint */
    char maps_name[256];
    /* named after the file glibc made under a temporary name (ipc_sem_named.c) */
    snprintf(maps_name, sizeof maps_name, "%s", cf_maps_line("/dev/shm/"));
    sc_ready();
    sc_wait_go();
    int v = -1;
    sem_getvalue(lock, &v);
    sc_check(v == 2, "semaphore value", "%d, want 2", v);
    sem_post(go);
    sem_wait(lock);
    sem_wait(lock);
    sem_wait(lock);                                 /* the child's post: one object between the two */
    sem_getvalue(lock, &v);
    sc_check(v == 0, "the child's post arrived", "%d", v);
    const char *line = cf_maps_line("/dev/shm/");
    sc_check(strstr(line, " (deleted)") && strcmp(line, maps_name) == 0, "maps names the object, deleted", "%s, was %s",
             line, maps_name);
    char path[128];
    snprintf(path, sizeof path, "/dev/shm%s", held);
    struct stat st;
    sc_check(stat(path, &st) != 0 && errno == ENOENT, "no name under /dev/shm", "%s", path);
    sc_check(fstat(fd, &st) == 0 && st.st_nlink == 0 && st.st_size == 4096, "held object unlinked, its size",
             "nlink %ld size %ld", (long)st.st_nlink, (long)st.st_size);
    cf_collect("child", child);
    char buf[8] = {0};
    sc_check(pread(fd, buf, 4, 100) == 4 && memcmp(buf, "held", 4) == 0, "held object's data", "%.4s", buf);
    sc_check(pread(fd, buf, 4, 200) == 4 && memcmp(buf, "kid!", 4) == 0, "the child's write, one object", "%.4s", buf);
    return sc_done();
}
