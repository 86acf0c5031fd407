/* Flips MADV_DONTFORK on and off on a mapping as fast as it can, for ever:
 * a job whose VmFlags change while it is being checkpointed.
 *   flagflip READY */
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    /* Fenced by PROT_NONE neighbours, so that flipping the flag never merges or splits it. */
    char *fence = mmap(NULL, 3 << 20, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (fence == MAP_FAILED || argc < 2) return 1;
    char *p = fence + (1 << 20);
    mprotect(p, 1 << 20, PROT_READ | PROT_WRITE);
    p[0] = 1;
    FILE *f = fopen(argv[1], "w");
    fprintf(f, "%d\n", getpid());
    fclose(f);
    for (;;) {
        madvise(p, 1 << 20, MADV_DONTFORK);
        madvise(p, 1 << 20, MADV_DOFORK);
    }
}
