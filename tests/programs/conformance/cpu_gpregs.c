/* General-purpose registers the kernel keeps across a syscall (rbx, rdx, r8-r10, r12-r15) and the
 * direction flag hold known values across the checkpoint (assembly loop of raw access(2)). */
#include "cf.h"

__attribute__((used)) static uint64_t cf_got[10];
__attribute__((used)) static const uint64_t cf_want[9] = {
    0x1111111111111111ULL, 0x2222222222222222ULL, 0x8888888888888888ULL, 0x9999999999999999ULL,
    0xaaaaaaaaaaaaaaaaULL, 0xc0c0c0c0c0c0c0c0ULL, 0xd0d0d0d0d0d0d0d0ULL, 0xe0e0e0e0e0e0e0e0ULL,
    0xf0f0f0f0f0f0f0f0ULL};
__attribute__((used)) static const char *cf_go;

int main(int argc, char **argv)
{
    cf_init(argc, argv);
    cf_go = sc_go_path;
    sc_ready();
    __asm__ volatile(
        "mov cf_want+0(%%rip),%%rbx\n mov cf_want+8(%%rip),%%rdx\n mov cf_want+16(%%rip),%%r8\n"
        "mov cf_want+24(%%rip),%%r9\n mov cf_want+32(%%rip),%%r10\n mov cf_want+40(%%rip),%%r12\n"
        "mov cf_want+48(%%rip),%%r13\n mov cf_want+56(%%rip),%%r14\n mov cf_want+64(%%rip),%%r15\n"
        "mov cf_go(%%rip),%%rdi\n"
        "std\n"
        "1: mov $21, %%eax\n xor %%esi, %%esi\n syscall\n test %%rax, %%rax\n jnz 1b\n"
        "pushf\n pop %%rax\n cld\n"
        "mov %%rbx,cf_got+0(%%rip)\n mov %%rdx,cf_got+8(%%rip)\n mov %%r8,cf_got+16(%%rip)\n"
        "mov %%r9,cf_got+24(%%rip)\n mov %%r10,cf_got+32(%%rip)\n mov %%r12,cf_got+40(%%rip)\n"
        "mov %%r13,cf_got+48(%%rip)\n mov %%r14,cf_got+56(%%rip)\n mov %%r15,cf_got+64(%%rip)\n"
        "mov %%rax,cf_got+72(%%rip)\n"
        :
        :
        : "rax", "rbx", "rcx", "rdx", "rsi", "rdi", "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15",
          "memory", "cc");
    const char *names[9] = {"rbx", "rdx", "r8", "r9", "r10", "r12", "r13", "r14", "r15"};
    for (int i = 0; i < 9; i++)
        sc_check(cf_got[i] == cf_want[i], names[i], "%016llx want %016llx", (unsigned long long)cf_got[i],
                 (unsigned long long)cf_want[i]);
    sc_check(cf_got[9] & 0x400, "direction flag still set", "rflags %#llx", (unsigned long long)cf_got[9]);
    return sc_done();
}
