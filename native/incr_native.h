/* incr native core: the parts of checkpoint/restore that must not run in Python
 * (the restore stub) or that are hot (remote syscalls, batched process_vm_*v).
 * Every function returns a negative errno on failure, never sets Python state. */
#include <stdint.h>
#include <sys/types.h>
#include <sys/user.h>

/* Debian 12's headers predate these (linux/fs.h gained PAGEMAP_SCAN in 6.7). */
struct incr_pm_scan_arg {
    uint64_t size, flags, start, end, walk_end, vec, vec_len, max_pages,
             category_inverted, category_mask, category_anyof_mask, return_mask;
};
struct incr_page_region { uint64_t start, end, categories; };
struct incr_rseq_cfg { uint64_t rseq_abi_pointer; uint32_t rseq_abi_size, signature, flags, pad; };

/* ptrace primitives python-ptrace lacks or gets wrong for us */
int incr_ptrace_seize(pid_t pid, unsigned long options);
int incr_ptrace_interrupt(pid_t pid);
int incr_ptrace_detach(pid_t pid, int sig);
int incr_ptrace_cont(pid_t pid, int sig);
int incr_ptrace_singlestep(pid_t pid, int sig);
int incr_ptrace_setoptions(pid_t pid, unsigned long options);
/* waitpid(__WALL), restarted on EINTR; pid or -errno.  A child given to incr_keep_exit_status
 * is never reaped by it: its exit is reported and it stays a zombie for its parent's own wait. */
int incr_wait(pid_t pid, int *status, int options);
/* Leave child `pid`'s exit to its parent's wait (keep=0: no longer); -ENOSPC: too many kept. */
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

/* One syscall executed by a tracee in ptrace-stop: registers = *base with rip,
 * rax = nr, args, orig_rax = -1; *ret = rax afterwards.  With put_back (a live
 * job's thread) the syscall runs between PTRACE_SYSCALL stops and put_back is
 * set again right after, so incr dying between two calls leaves the thread
 * sound; without (the restore stub) it is single-stepped.  With mask_after,
 * every signal is blocked while the injected registers are in place and the
 * mask is set to *mask_after before put_back.  Returns 0, a negative errno, or
 * a positive signal number when a signal-delivery-stop came instead (its
 * siginfo is in *siginfo128; the caller re-queues it and retries).  `fault`
 * (tests only; 0 = none): SIGKILL incr at that stage. */
#define INCR_REMOTE_FAULT_SET 1     /* injected registers set, thread not resumed */
#define INCR_REMOTE_FAULT_ENTRY 2   /* thread stopped at the injected syscall's entry */
#define INCR_REMOTE_FAULT_EXIT 3    /* thread stopped at its exit, registers not put back */
int incr_remote_syscall(pid_t pid, const struct user_regs_struct *base, uint64_t rip,
                        long nr, const long *args, long *ret, void *siginfo128,
                        const struct user_regs_struct *put_back, const uint64_t *mask_after, int fault);

/* Batched process_vm_readv/writev: local is one contiguous buffer, remote is
 * n (address, length) pairs taken in order.  Splits at IOV_MAX and resumes
 * after partial transfers.  Returns bytes moved or a negative errno. */
long incr_vm_read(pid_t pid, void *local, const uint64_t *addrs, const uint64_t *lens, size_t n);
long incr_vm_write(pid_t pid, const void *local, const uint64_t *addrs, const uint64_t *lens, size_t n);

long incr_pagemap_scan(int pagemap_fd, struct incr_pm_scan_arg *arg);

/* Restore stub: a child with PID want (clone3 set_tid) that resets its signal
 * dispositions, blocks every signal, closes fds >= 3, optionally calls setsid()
 * or setpgid(0, 0), then PTRACE_TRACEME and stops itself.  It never returns
 * into Python.  Returns the pid or a negative errno (EEXIST: pid taken). */
#define INCR_STUB_SETSID 1
#define INCR_STUB_SETPGID 2
#define INCR_STUB_NO_TRACEME 4
#define INCR_NS_IPC 8
/* INCR_STUB_OWN_SESSION: the stub joins a new session (and its process group)
 * whose leader is not the stub: a helper child calls setsid() and clones the
 * stub with CLONE_PARENT (so that the stub is still our child), then exits;
 * the caller has reaped it when this returns.  For a job whose session leader
 * was outside the job: it gets a session of its own, never the caller's, and
 * with it no controlling terminal.  With incr_spawn_pidns the namespace's init
 * is that leader. */
#define INCR_STUB_OWN_SESSION 16
long incr_spawn_stub(pid_t want, int flags);
/* A new PID namespace (and IPC namespace with INCR_NS_IPC) whose init creates
 * a stub with PID `root` inside it, to be seized once a byte arrives on
 * ready_fd; returns the init's PID here, or a negative errno. */
long incr_spawn_pidns(pid_t root, int flags, int ready_fd);
/* A stub with PID `want` (as incr_spawn_stub) that is not our child: a helper child
 * clones it and exits once it has reset itself, so that it already belongs to our
 * nearest subreaper (or init), the parent it keeps after a detached restore; it
 * waits in pause() to be seized.  For a root whose parent-death signal must not
 * fire when the restorer exits.  INCR_STUB_OWN_SESSION: that helper leads the
 * stub's new session.  Returns want or a negative errno (EEXIST). */
long incr_spawn_adopted(pid_t want, int flags);

int incr_pidfd_getfd(int pidfd, int fd);
int incr_tgkill(pid_t tgid, pid_t tid, int sig);
long incr_kcmp(pid_t pid1, pid_t pid2, int type, unsigned long idx1, unsigned long idx2);
long incr_get_robust_list(pid_t tid, uint64_t *head, uint64_t *len);

/* userfaultfd: Debian 12's linux/userfaultfd.h predates WP_UNPOPULATED (6.4)
 * and WP_ASYNC (6.7). */
#define INCR_UFFD_FEATURE_WP_HUGETLBFS_SHMEM (1ULL << 12)
#define INCR_UFFD_FEATURE_WP_UNPOPULATED (1ULL << 13)
#define INCR_UFFD_FEATURE_WP_ASYNC (1ULL << 15)
int incr_userfaultfd(int flags);
long incr_uffd_api(int uffd, uint64_t features, uint64_t *supported);
long incr_uffd_register_wp(int uffd, uint64_t start, uint64_t len);
long incr_uffd_writeprotect(int uffd, uint64_t start, uint64_t len);

/* /proc/PID/pagemap over [start, end) as runs of pages with equal flags:
 * out[3i] = run start, out[3i+1] = run end, out[3i+2] = flags, where flags
 * bit 0 = present or swapped (data), bit 1 = soft-dirty, bit 2 = file page or
 * shared anon, bit 3 = a userfaultfd pte marker (no data, though pagemap and
 * PAGEMAP_SCAN call it swapped).  Returns the number of runs (at most max_runs; the caller
 * continues from the last end) or a negative errno. */
long incr_pagemap_runs(int pagemap_fd, uint64_t start, uint64_t end, uint64_t *out, size_t max_runs);
/* A frame of a pack, from its trailer: its offset, and its digests: `count` of them, 16 bytes
 * each, from digest number `first` of the table's digests. */
struct incr_frame { uint64_t offset; uint32_t first, count; };
/* The frames of a serialized PackTrailer that hold one byte or more, by offset, for the read
 * path's check that a frame holds the page asked for.  The number listed; -1: not a valid
 * trailer; -2: more than max_frames frames or max_digests digests. */
long incr_trailer_table(const uint8_t *buf, size_t len, struct incr_frame *frames, size_t max_frames,
                        uint8_t *digests, size_t max_digests);
/* Check m page reads against a pack's frame table: read r takes page slots[r] of the frame at
 * offsets[r] and expects the page whose digest is number pages[r] of
 * `want` (want_pages of them).  The first read whose frame holds another page (or no frame is
 * there), or -1 when all are right. */
long incr_check_placement(const struct incr_frame *frames, size_t n, const uint8_t *digests,
                          const uint64_t *offsets, const uint16_t *slots, const uint32_t *pages, size_t m,
                          const uint8_t *want, size_t want_pages);
