/* Registers and signal state survive incr being killed in the middle of a
 * syscall it injected (tests/test_crash_safety.py).   regsjob OUT READY GO
 * The main thread spins in assembly with known values in rbx, r12-r15,
 * ymm0-ymm13 and a non-default MXCSR, checking them on every turn; every
 * 4096 turns it asks the kernel (a raw access(2), which keeps them all)
 * whether GO exists.  A second thread sleeps in usleep(2) loops (a sleep cut
 * short by EINTR is fine).  SIGUSR1 is counted by a handler.  At GO: one line
 * per check, and "usr1 N" with the number of SIGUSR1 received. */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include "selfcheck.h"

static volatile sig_atomic_t usr1;
static volatile int stop;
static void on_usr1(int sig) { (void)sig; usr1++; }

static void *sleeper(void *arg)
{
    volatile uint64_t *turns = arg;
    while (!stop) {
        usleep(1000);
        (*turns)++;
    }
    return NULL;
}

/* 0 when every register kept its value until GO appeared, else the turn it broke at. */
static uint64_t spin(const char *go, const uint64_t *pattern)
{
    uint64_t broke = 0, poll = 4096;
    __asm__ volatile(
        "vmovdqu   0(%[pat]), %%ymm0\n\t"   "vmovdqu  32(%[pat]), %%ymm1\n\t"
        "vmovdqu  64(%[pat]), %%ymm2\n\t"   "vmovdqu  96(%[pat]), %%ymm3\n\t"
        "vmovdqu 128(%[pat]), %%ymm4\n\t"   "vmovdqu 160(%[pat]), %%ymm5\n\t"
        "vmovdqu 192(%[pat]), %%ymm6\n\t"   "vmovdqu 224(%[pat]), %%ymm7\n\t"
        "vmovdqu 256(%[pat]), %%ymm8\n\t"   "vmovdqu 288(%[pat]), %%ymm9\n\t"
        "vmovdqu 320(%[pat]), %%ymm10\n\t"  "vmovdqu 352(%[pat]), %%ymm11\n\t"
        "vmovdqu 384(%[pat]), %%ymm12\n\t"  "vmovdqu 416(%[pat]), %%ymm13\n\t"
        "movabs $0x1111222233334444, %%rbx\n\t"
        "movabs $0x5555666677778888, %%r12\n\t"
        "movabs $0x9999aaaabbbbcccc, %%r13\n\t"
        "movabs $0xddddeeeeffff0000, %%r14\n\t"
        "movabs $0x0123456789abcdef, %%r15\n\t"
        "1:\n\t"
        "vpxor %%ymm15, %%ymm15, %%ymm15\n\t"
        "vpxor   0(%[pat]), %%ymm0, %%ymm14\n\t"   "vpor %%ymm14, %%ymm15, %%ymm15\n\t"
        "vpxor  32(%[pat]), %%ymm1, %%ymm14\n\t"   "vpor %%ymm14, %%ymm15, %%ymm15\n\t"
        "vpxor  64(%[pat]), %%ymm2, %%ymm14\n\t"   "vpor %%ymm14, %%ymm15, %%ymm15\n\t"
        "vpxor  96(%[pat]), %%ymm3, %%ymm14\n\t"   "vpor %%ymm14, %%ymm15, %%ymm15\n\t"
        "vpxor 128(%[pat]), %%ymm4, %%ymm14\n\t"   "vpor %%ymm14, %%ymm15, %%ymm15\n\t"
        "vpxor 160(%[pat]), %%ymm5, %%ymm14\n\t"   "vpor %%ymm14, %%ymm15, %%ymm15\n\t"
        "vpxor 192(%[pat]), %%ymm6, %%ymm14\n\t"   "vpor %%ymm14, %%ymm15, %%ymm15\n\t"
        "vpxor 224(%[pat]), %%ymm7, %%ymm14\n\t"   "vpor %%ymm14, %%ymm15, %%ymm15\n\t"
        "vpxor 256(%[pat]), %%ymm8, %%ymm14\n\t"   "vpor %%ymm14, %%ymm15, %%ymm15\n\t"
        "vpxor 288(%[pat]), %%ymm9, %%ymm14\n\t"   "vpor %%ymm14, %%ymm15, %%ymm15\n\t"
        "vpxor 320(%[pat]), %%ymm10, %%ymm14\n\t"  "vpor %%ymm14, %%ymm15, %%ymm15\n\t"
        "vpxor 352(%[pat]), %%ymm11, %%ymm14\n\t"  "vpor %%ymm14, %%ymm15, %%ymm15\n\t"
        "vpxor 384(%[pat]), %%ymm12, %%ymm14\n\t"  "vpor %%ymm14, %%ymm15, %%ymm15\n\t"
        "vpxor 416(%[pat]), %%ymm13, %%ymm14\n\t"  "vpor %%ymm14, %%ymm15, %%ymm15\n\t"
        "vptest %%ymm15, %%ymm15\n\t"
        "jnz 8f\n\t"
        "movabs $0x1111222233334444, %%rax\n\t"  "cmp %%rax, %%rbx\n\t"  "jne 8f\n\t"
        "movabs $0x5555666677778888, %%rax\n\t"  "cmp %%rax, %%r12\n\t"  "jne 8f\n\t"
        "movabs $0x9999aaaabbbbcccc, %%rax\n\t"  "cmp %%rax, %%r13\n\t"  "jne 8f\n\t"
        "movabs $0xddddeeeeffff0000, %%rax\n\t"  "cmp %%rax, %%r14\n\t"  "jne 8f\n\t"
        "movabs $0x0123456789abcdef, %%rax\n\t"  "cmp %%rax, %%r15\n\t"  "jne 8f\n\t"
        "incq %[broke]\n\t"                 /* counts turns until a break or GO */
        "decq %[poll]\n\t"
        "jnz 1b\n\t"
        "movq $4096, %[poll]\n\t"
        "mov $21, %%eax\n\t"                /* access(go, F_OK) */
        "mov %[go], %%rdi\n\t"
        "xor %%esi, %%esi\n\t"
        "syscall\n\t"
        "test %%rax, %%rax\n\t"
        "jnz 1b\n\t"
        "movq $0, %[broke]\n\t"             /* GO, nothing broke */
        "jmp 9f\n\t"
        "8:\n\t"
        "incq %[broke]\n\t"                 /* the turn it broke at (never 0) */
        "9:\n\t"
        "vzeroupper\n\t"
        : [broke] "+m"(broke), [poll] "+m"(poll)
        : [pat] "r"(pattern), [go] "r"(go)
        : "rax", "rbx", "rcx", "rsi", "rdi", "r11", "r12", "r13", "r14", "r15",
          "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11",
          "xmm12", "xmm13", "xmm14", "xmm15", "memory", "cc");
    return broke;
}

int main(int argc, char **argv)
{
    sc_init(argc, argv);
    static uint64_t pattern[14 * 4];
    for (int i = 0; i < 14 * 4; i++)
        pattern[i] = 0x0101010101010101ULL * (uint64_t)(i + 1) ^ ((uint64_t)i << 40);
    struct sigaction sa = { .sa_handler = on_usr1, .sa_flags = SA_RESTART };
    sigaction(SIGUSR1, &sa, NULL);
    unsigned mxcsr = 0x7f80 | 0x6000;      /* every exception masked, round toward zero */
    __asm__ volatile("ldmxcsr %0" : : "m"(mxcsr));
    volatile uint64_t sleeps = 0;
    pthread_t t;
    pthread_create(&t, NULL, sleeper, (void *)&sleeps);
    sc_ready();
    uint64_t broke = spin(sc_go_path, pattern);
    unsigned now = 0;
    __asm__ volatile("stmxcsr %0" : "=m"(now));
    stop = 1;
    uint64_t before = sleeps;
    pthread_join(t, NULL);
    sc_check(broke == 0, "registers", "a register changed at turn %llu", (unsigned long long)broke);
    sc_check(now == mxcsr, "mxcsr", "%#x, not %#x", now, mxcsr);
    sc_check(before > 0, "sleeper", "the sleeping thread never woke");
    sigset_t blocked;
    pthread_sigmask(SIG_BLOCK, NULL, &blocked);
    sc_check(!sigismember(&blocked, SIGUSR1), "signal mask", "SIGUSR1 is blocked");
    sc_open_out();
    fprintf(sc_out, "ok usr1 %d\n", (int)usr1);
    return sc_done();
}
