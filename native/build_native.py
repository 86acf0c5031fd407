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
#define INCR_INDEX_VALUE_MAX ...
long incr_index_entries(const uint8_t *buf, size_t len, const uint8_t *pack, uint32_t kind, uint8_t *keys,
                        uint8_t *values, uint32_t *lens, size_t max);
long incr_trailer_table(const uint8_t *buf, size_t len, struct incr_frame *frames, size_t max_frames,
                        uint8_t *digests, size_t max_digests);
#define INCR_CODEC_RAW ...
#define INCR_CODEC_ZSTD ...
struct incr_read {
    uint8_t pack[32];
    uint64_t offset;
    uint64_t at;
    uint32_t length, raw_length, page, group, dict;
    uint16_t slot;
    uint8_t codec, zero;
};
struct incr_plan { size_t groups, dicts, raw, zeros, bad; };
long incr_plan_reads(const uint8_t *values, const uint32_t *lens, size_t n, struct incr_read *reads,
                     uint32_t *group_first, uint8_t *dicts, uint32_t *raw, struct incr_plan *plan);
long incr_check_reads(const struct incr_frame *frames, size_t n, const uint8_t *digests,
                      const struct incr_read *reads, size_t first, size_t count,
                      const uint8_t *want, size_t want_pages);
#define INCR_FRAME_ENTRY_MAX ...
long incr_pack_pages(const uint8_t *src, size_t n, const uint8_t *dst, size_t stride, const uint32_t *lens,
                     const uint8_t *digests, uint64_t offset, uint32_t level, uint32_t dict,
                     uint8_t *out, uint64_t *stored, uint8_t *frames);
long incr_fetch_reads(struct incr_read *reads, size_t first, size_t count, int fd, uint8_t *buf,
                      uint64_t cap, uint64_t *used, uint64_t gap, int drop, uint64_t *need, size_t *bad);
#define INCR_DECODE_THREADS ...
#define INCR_DECODE_TRUNCATED ...
#define INCR_DECODE_LENGTH ...
#define INCR_DECODE_CODEC ...
#define INCR_DECODE_ZSTD ...
#define INCR_DECODE_DICT ...
#define INCR_DECODE_SLOT ...
#define INCR_DECODE_NOMEM ...
struct incr_decode_error { size_t read; int code; char what[96]; };
long incr_decode_reads(const struct incr_read *reads, size_t n, const uint8_t *const *bases,
                       const uint64_t *sizes, void *const *ddicts, size_t ndicts, uint8_t *out,
                       int threads, struct incr_decode_error *err, uint64_t *frames);
void *incr_ddict_new(const void *data, size_t len);
void incr_ddict_free(void *ddict);
size_t incr_page_digests(const uint8_t *buf, const uint32_t *index, size_t n, uint8_t *out);
long incr_check_digests(const uint8_t *buf, const uint32_t *index, size_t n, const uint8_t *want);
void *incr_encoder_new(int threads, int level);
void incr_encoder_free(void *encoder);
void *incr_cdict_new(const void *data, size_t len, int level);
void incr_cdict_free(void *cdict);
long incr_encode_pages(void *encoder, const uint8_t *src, size_t n, const void *cdict, double min_ratio,
                       uint8_t *dst, size_t stride, uint32_t *lens);
"""

ffibuilder = FFI()
ffibuilder.cdef(CDEF)
ffibuilder.set_source(
    "incr._native",
    '#include "incr_native.h"',
    sources=[str((HERE / name).relative_to(HERE.parent)) for name in ("incr_native.c", "incr_pages.c", "incr_digest.c")],
    include_dirs=[str(HERE.relative_to(HERE.parent))],
    extra_compile_args=["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter", "-pthread"],
    # The page store compresses and decompresses page frames in C (Debian: libzstd-dev).
    libraries=["zstd"],
)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
