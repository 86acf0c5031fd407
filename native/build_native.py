"""cffi (API mode) builder for ``incr._native``; run by ``pip install`` via setup.py."""

from pathlib import Path

from cffi import FFI

HERE = Path(__file__).resolve().parent

CDEF = """
typedef int... pid_t;
struct user_regs_struct {
    unsigned long long r15, r14, r13, r12, rbp, rbx, r11, r10, r9, r8, rax, rcx, rdx, rsi, rdi,
                       orig_rax, rip, cs, eflags, rsp, ss, fs_base, gs_base, ds, es, fs, gs;
};
struct incr_pm_scan_arg {
    uint64_t size, flags, start, end, walk_end, vec, vec_len, max_pages,
             category_inverted, category_mask, category_anyof_mask, return_mask;
};
struct incr_page_region { uint64_t start, end, categories; };
struct incr_rseq_cfg { uint64_t rseq_abi_pointer; uint32_t rseq_abi_size, signature, flags, pad; };

int incr_ptrace_seize(pid_t pid, unsigned long options);
int incr_ptrace_interrupt(pid_t pid);
int incr_ptrace_detach(pid_t pid, int sig);
int incr_ptrace_cont(pid_t pid, int sig);
int incr_ptrace_singlestep(pid_t pid, int sig);
int incr_ptrace_setoptions(pid_t pid, unsigned long options);
int incr_wait(pid_t pid, int *status, int options);
int incr_keep_exit_status(pid_t pid, int keep);
int incr_getregs(pid_t pid, struct user_regs_struct *regs);
int incr_setregs(pid_t pid, const struct user_regs_struct *regs);
long incr_getregset(pid_t pid, int type, void *buf, size_t len);
int incr_setregset(pid_t pid, int type, const void *buf, size_t len);
int incr_getsigmask(pid_t pid, uint64_t *mask);
int incr_setsigmask(pid_t pid, uint64_t mask);
int incr_get_rseq(pid_t pid, struct incr_rseq_cfg *cfg);
int incr_getsiginfo(pid_t pid, void *siginfo128);
long incr_peeksiginfo(pid_t pid, uint64_t off, uint32_t flags, int32_t nr, void *buf);
#define INCR_REMOTE_FAULT_SET ...
#define INCR_REMOTE_FAULT_ENTRY ...
#define INCR_REMOTE_FAULT_EXIT ...
int incr_remote_syscall(pid_t pid, const struct user_regs_struct *base, uint64_t rip,
                        long nr, const long *args, long *ret, void *siginfo128,
                        const struct user_regs_struct *put_back, const uint64_t *mask_after, int fault);
long incr_vm_read(pid_t pid, void *local, const uint64_t *addrs, const uint64_t *lens, size_t n);
long incr_vm_write(pid_t pid, const void *local, const uint64_t *addrs, const uint64_t *lens, size_t n);
long incr_pagemap_scan(int pagemap_fd, struct incr_pm_scan_arg *arg);
#define INCR_STUB_SETSID 1
#define INCR_STUB_SETPGID 2
#define INCR_STUB_NO_TRACEME 4
#define INCR_NS_IPC 8
#define INCR_STUB_OWN_SESSION 16
long incr_spawn_stub(pid_t want, int flags);
long incr_spawn_pidns(pid_t root, int flags, int ready_fd);
long incr_spawn_adopted(pid_t want, int flags);
int incr_pidfd_getfd(int pidfd, int fd);
int incr_tgkill(pid_t tgid, pid_t tid, int sig);
long incr_kcmp(pid_t pid1, pid_t pid2, int type, unsigned long idx1, unsigned long idx2);
long incr_get_robust_list(pid_t tid, uint64_t *head, uint64_t *len);
#define INCR_UFFD_FEATURE_WP_HUGETLBFS_SHMEM ...
#define INCR_UFFD_FEATURE_WP_UNPOPULATED ...
#define INCR_UFFD_FEATURE_WP_ASYNC ...
int incr_userfaultfd(int flags);
long incr_uffd_api(int uffd, uint64_t features, uint64_t *supported);
long incr_uffd_register_wp(int uffd, uint64_t start, uint64_t len);
long incr_uffd_writeprotect(int uffd, uint64_t start, uint64_t len);
long incr_pagemap_runs(int pagemap_fd, uint64_t start, uint64_t end, uint64_t *out, size_t max_runs);
struct incr_frame { uint64_t offset; uint32_t first, count; };
long incr_trailer_table(const uint8_t *buf, size_t len, struct incr_frame *frames, size_t max_frames,
                        uint8_t *digests, size_t max_digests);
long incr_check_placement(const struct incr_frame *frames, size_t n, const uint8_t *digests,
                          const uint64_t *offsets, const uint16_t *slots, const uint32_t *pages, size_t m,
                          const uint8_t *want, size_t want_pages);
"""

ffibuilder = FFI()
ffibuilder.cdef(CDEF)
ffibuilder.set_source(
    "incr._native",
    '#include "incr_native.h"',
    sources=[str((HERE / "incr_native.c").relative_to(HERE.parent))],
    include_dirs=[str(HERE.relative_to(HERE.parent))],
    extra_compile_args=["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"],
)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
