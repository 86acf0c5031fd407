/* AVX-512 state: zmm16-zmm31 (upper bank) and opmask registers k1-k7 hold known values across the
 * checkpoint (an assembly loop making only raw access(2) calls until GO exists). */
#include "cf.h"

int main(int argc, char **argv)
{
    cf_init(argc, argv);
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("avx512f")) {
        sc_ready();
        sc_wait_go();
        sc_check(1, "no AVX-512 here (nothing to check)", "%s", "");
        return sc_done();
    }
    static uint64_t pat[128] __attribute__((aligned(64))), got[128] __attribute__((aligned(64)));
    static uint64_t kpat[8], kgot[8];
    for (int i = 0; i < 128; i++) pat[i] = 0x9e3779b97f4a7c15ULL * (uint64_t)(i + 7);
    for (int i = 0; i < 8; i++) kpat[i] = 0xa5a5u ^ (uint64_t)(i * 0x1111);
    sc_ready();
    long r;
    __asm__ volatile(
        "vmovdqa64 0(%[p]),%%zmm16\n vmovdqa64 64(%[p]),%%zmm17\n vmovdqa64 128(%[p]),%%zmm18\n"
        "vmovdqa64 192(%[p]),%%zmm19\n vmovdqa64 256(%[p]),%%zmm20\n vmovdqa64 320(%[p]),%%zmm21\n"
        "vmovdqa64 384(%[p]),%%zmm22\n vmovdqa64 448(%[p]),%%zmm23\n vmovdqa64 512(%[p]),%%zmm24\n"
        "vmovdqa64 576(%[p]),%%zmm25\n vmovdqa64 640(%[p]),%%zmm26\n vmovdqa64 704(%[p]),%%zmm27\n"
        "vmovdqa64 768(%[p]),%%zmm28\n vmovdqa64 832(%[p]),%%zmm29\n vmovdqa64 896(%[p]),%%zmm30\n"
        "vmovdqa64 960(%[p]),%%zmm31\n"
        "kmovw 8(%[kp]),%%k1\n kmovw 16(%[kp]),%%k2\n kmovw 24(%[kp]),%%k3\n kmovw 32(%[kp]),%%k4\n"
        "kmovw 40(%[kp]),%%k5\n kmovw 48(%[kp]),%%k6\n kmovw 56(%[kp]),%%k7\n"
        "1: mov $21, %%eax\n mov %[go], %%rdi\n xor %%esi, %%esi\n syscall\n test %%rax, %%rax\n jnz 1b\n"
        "vmovdqa64 %%zmm16,0(%[g])\n vmovdqa64 %%zmm17,64(%[g])\n vmovdqa64 %%zmm18,128(%[g])\n"
        "vmovdqa64 %%zmm19,192(%[g])\n vmovdqa64 %%zmm20,256(%[g])\n vmovdqa64 %%zmm21,320(%[g])\n"
        "vmovdqa64 %%zmm22,384(%[g])\n vmovdqa64 %%zmm23,448(%[g])\n vmovdqa64 %%zmm24,512(%[g])\n"
        "vmovdqa64 %%zmm25,576(%[g])\n vmovdqa64 %%zmm26,640(%[g])\n vmovdqa64 %%zmm27,704(%[g])\n"
        "vmovdqa64 %%zmm28,768(%[g])\n vmovdqa64 %%zmm29,832(%[g])\n vmovdqa64 %%zmm30,896(%[g])\n"
        "vmovdqa64 %%zmm31,960(%[g])\n"
        "kmovw %%k1,8(%[kg])\n kmovw %%k2,16(%[kg])\n kmovw %%k3,24(%[kg])\n kmovw %%k4,32(%[kg])\n"
        "kmovw %%k5,40(%[kg])\n kmovw %%k6,48(%[kg])\n kmovw %%k7,56(%[kg])\n"
        "vzeroupper\n"
        : "=&a"(r)
        : [p] "r"(pat), [g] "r"(got), [kp] "r"(kpat), [kg] "r"(kgot), [go] "r"(sc_go_path)
        : "rcx", "r11", "rdi", "rsi", "memory", "xmm16", "xmm17", "xmm18", "xmm19", "xmm20", "xmm21", "xmm22",
          "xmm23", "xmm24", "xmm25", "xmm26", "xmm27", "xmm28", "xmm29", "xmm30", "xmm31", "k1", "k2", "k3",
          "k4", "k5", "k6", "k7");
    for (int reg = 0; reg < 16; reg++) {
        char what[32];
        snprintf(what, sizeof what, "zmm%d", reg + 16);
        sc_check(memcmp(pat + reg * 8, got + reg * 8, 64) == 0, what, "lane7 %016llx want %016llx",
                 (unsigned long long)got[reg * 8 + 7], (unsigned long long)pat[reg * 8 + 7]);
    }
    for (int k = 1; k < 8; k++) {
        char what[32];
        snprintf(what, sizeof what, "k%d", k);
        sc_check((uint16_t)kgot[k] == (uint16_t)kpat[k], what, "%#x want %#x", (unsigned)(uint16_t)kgot[k],
                 (unsigned)(uint16_t)kpat[k]);
    }
    return sc_done();
}
