/* The heap grown with sbrk(2) (4 MiB, filled) and shrunk a little: the break, the data, and
 * growing it again after restore. */
#include "cf.h"

int main(int argc, char **argv)
{
    cf_init(argc, argv);
    sc_open_out();
    char *start = sbrk(0);
    char *mem = sbrk(4 << 20);
    if (mem == (void *)-1) return 3;
    for (size_t i = 0; i < (4 << 20); i += 512) mem[i] = (char)(i >> 9);
    sbrk(-(1 << 20));
    char *brk_before = sbrk(0);
    sc_ready();
    sc_wait_go();
    char *brk_after = sbrk(0);
    sc_check(brk_after == brk_before, "break", "%p, before %p", (void *)brk_after, (void *)brk_before);
    int wrong = 0;
    for (size_t i = 0; i < (3 << 20); i += 512) wrong += mem[i] != (char)(i >> 9);
    sc_check(wrong == 0, "heap data", "%d wrong", wrong);
    char *more = sbrk(2 << 20);
    sc_check(more == brk_before, "sbrk grows from the old break", "%p", (void *)more);
    int zero = 1;
    for (size_t i = 0; i < (2 << 20); i += 4096) zero &= more[i] == 0;
    sc_check(zero, "new heap reads zero", "%s", "");
    more[(2 << 20) - 1] = 1;
    sc_check(start <= mem, "heap start", "%p %p", (void *)start, (void *)mem);
    return sc_done();
}
