/* Holds memory and waits: idle MIB [zero|random] READYFILE
 * random: MIB MiB of pseudo-random bytes; zero: MIB MiB written with zeros. */
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    size_t len = (size_t)atol(argv[1]) << 20;
    unsigned char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) { perror("mmap"); return 1; }
    if (!strcmp(argv[2], "zero")) {
        memset(p, 0, len);
    } else {
        uint64_t x = 88172645463325252ull;
        for (size_t i = 0; i < len; i += 8) {
            x ^= x << 13; x ^= x >> 7; x ^= x << 17;
            *(uint64_t *)(p + i) = x;
        }
    }
    FILE *f = fopen(argv[3], "w");
    fprintf(f, "%d\n", getpid());
    fclose(f);
    for (;;) pause();
}
