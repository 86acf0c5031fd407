/* All sixteen ymm registers hold known values across the checkpoint: an assembly loop that
 * makes only raw access(2) calls (which keep every vector register) until GO exists. */
#include "cf.h"

int main(int argc, char **argv)
{
    cf_init(argc, argv);
    static uint64_t pat[64] __attribute__((aligned(32))), got[64] __attribute__((aligned(32)));
    for (int i = 0; i < 64; i++) pat[i] = 0x0123456789abcdefULL * (uint64_t)(i + 1) ^ (uint64_t)i << 56;
    sc_ready();
    long r;
    __asm__ volatile(
        "vmovdqa 0(%[p]),%%ymm0\n vmovdqa 32(%[p]),%%ymm1\n vmovdqa 64(%[p]),%%ymm2\n vmovdqa 96(%[p]),%%ymm3\n"
        "vmovdqa 128(%[p]),%%ymm4\n vmovdqa 160(%[p]),%%ymm5\n vmovdqa 192(%[p]),%%ymm6\n vmovdqa 224(%[p]),%%ymm7\n"
        "vmovdqa 256(%[p]),%%ymm8\n vmovdqa 288(%[p]),%%ymm9\n vmovdqa 320(%[p]),%%ymm10\n vmovdqa 352(%[p]),%%ymm11\n"
        "vmovdqa 384(%[p]),%%ymm12\n vmovdqa 416(%[p]),%%ymm13\n vmovdqa 448(%[p]),%%ymm14\n vmovdqa 480(%[p]),%%ymm15\n"
        "1: mov $21, %%eax\n mov %[go], %%rdi\n xor %%esi, %%esi\n syscall\n test %%rax, %%rax\n jnz 1b\n"
        "vmovdqa %%ymm0,0(%[g])\n vmovdqa %%ymm1,32(%[g])\n vmovdqa %%ymm2,64(%[g])\n vmovdqa %%ymm3,96(%[g])\n"
        "vmovdqa %%ymm4,128(%[g])\n vmovdqa %%ymm5,160(%[g])\n vmovdqa %%ymm6,192(%[g])\n vmovdqa %%ymm7,224(%[g])\n"
        "vmovdqa %%ymm8,256(%[g])\n vmovdqa %%ymm9,288(%[g])\n vmovdqa %%ymm10,320(%[g])\n vmovdqa %%ymm11,352(%[g])\n"
        "vmovdqa %%ymm12,384(%[g])\n vmovdqa %%ymm13,416(%[g])\n vmovdqa %%ymm14,448(%[g])\n vmovdqa %%ymm15,480(%[g])\n"
        "vzeroupper\n"
        : "=&a"(r)
        : [p] "r"(pat), [g] "r"(got), [go] "r"(sc_go_path)
        : "rcx", "r11", "rdi", "rsi", "memory", "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7",
          "xmm8", "xmm9", "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15");
    for (int reg = 0; reg < 16; reg++) {
        char what[32];
        snprintf(what, sizeof what, "ymm%d", reg);
        sc_check(memcmp(pat + reg * 4, got + reg * 4, 32) == 0, what, "lane0 %016llx want %016llx",
                 (unsigned long long)got[reg * 4], (unsigned long long)pat[reg * 4]);
    }
    return sc_done();
}
