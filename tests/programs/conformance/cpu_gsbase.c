/* The GS base (arch_prctl ARCH_SET_GS; glibc leaves GS alone) and the FS base (glibc's TLS)
 * come back: %gs:8 reads our block, the FS base is the same. */
#include "cf.h"
#include <asm/prctl.h>

static __thread uint64_t tls_word = 0x7157715771577157ULL;

int main(int argc, char **argv)
{
    cf_init(argc, argv);
    static uint64_t block[4] = {0, 0x6b5b4b3b2b1b0b00ULL, 0, 0};
    unsigned long fs_before = 0, fs_after = 0, gs_after = 0;
    if (syscall(SYS_arch_prctl, ARCH_SET_GS, (unsigned long)block)) return 3;
    syscall(SYS_arch_prctl, ARCH_GET_FS, &fs_before);
    tls_word ^= 0xff;
    sc_ready();
    sc_wait_go();
    syscall(SYS_arch_prctl, ARCH_GET_GS, &gs_after);
    syscall(SYS_arch_prctl, ARCH_GET_FS, &fs_after);
    uint64_t via_gs;
    __asm__ volatile("mov %%gs:8, %0" : "=r"(via_gs));
    sc_check(gs_after == (unsigned long)block, "GS base", "%#lx want %p", gs_after, (void *)block);
    sc_check(via_gs == block[1], "%gs:8 reads the block", "%#llx", (unsigned long long)via_gs);
    sc_check(fs_after == fs_before, "FS base", "%#lx want %#lx", fs_after, fs_before);
    sc_check(tls_word == (0x7157715771577157ULL ^ 0xff), "TLS variable", "%#llx", (unsigned long long)tls_word);
    return sc_done();
}
