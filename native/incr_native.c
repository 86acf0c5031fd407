#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <elf.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <linux/sched.h>
#include <linux/userfaultfd.h>

#include "incr_native.h"

#define PAGEMAP_SCAN_IOCTL _IOWR('f', 16, struct incr_pm_scan_arg)
#ifndef PTRACE_GET_RSEQ_CONFIGURATION
#define PTRACE_GET_RSEQ_CONFIGURATION 0x420f
#endif
#ifndef SYS_pidfd_getfd
#define SYS_pidfd_getfd 438
#endif
#ifndef SYS_close_range
#define SYS_close_range 436
#endif
#ifndef SYS_clone3
#define SYS_clone3 435
#endif

#define RET(expr) return (expr) < 0 ? -errno : 0

int incr_ptrace_seize(pid_t pid, unsigned long options) { RET(ptrace(PTRACE_SEIZE, pid, 0, options)); }
int incr_ptrace_interrupt(pid_t pid) { RET(ptrace(PTRACE_INTERRUPT, pid, 0, 0)); }
int incr_ptrace_detach(pid_t pid, int sig) { RET(ptrace(PTRACE_DETACH, pid, 0, (long)sig)); }
int incr_ptrace_cont(pid_t pid, int sig) { RET(ptrace(PTRACE_CONT, pid, 0, (long)sig)); }
int incr_ptrace_singlestep(pid_t pid, int sig) { RET(ptrace(PTRACE_SINGLESTEP, pid, 0, (long)sig)); }
int incr_ptrace_setoptions(pid_t pid, unsigned long options) { RET(ptrace(PTRACE_SETOPTIONS, pid, 0, options)); }
int incr_getregs(pid_t pid, struct user_regs_struct *regs) { RET(ptrace(PTRACE_GETREGS, pid, 0, regs)); }
int incr_setregs(pid_t pid, const struct user_regs_struct *regs) { RET(ptrace(PTRACE_SETREGS, pid, 0, regs)); }
int incr_getsigmask(pid_t pid, uint64_t *mask) { RET(ptrace(PTRACE_GETSIGMASK, pid, sizeof *mask, mask)); }
int incr_setsigmask(pid_t pid, uint64_t mask) { RET(ptrace(PTRACE_SETSIGMASK, pid, sizeof mask, &mask)); }
int incr_getsiginfo(pid_t pid, void *siginfo128) { RET(ptrace(PTRACE_GETSIGINFO, pid, 0, siginfo128)); }

/* Children whose exit status is for their parent's own wait (incr_keep_exit_status). */
#define KEPT_MAX 16
static pid_t kept[KEPT_MAX];

static int is_kept(pid_t pid);

int incr_keep_exit_status(pid_t pid, int keep)
{
    if (pid <= 0 || (keep && is_kept(pid)))
        return 0;
    for (int i = 0; i < KEPT_MAX; i++)
        if (kept[i] == (keep ? 0 : pid)) {
            kept[i] = keep ? pid : 0;
            return 0;
        }
    return keep ? -ENOSPC : 0;
}

static int is_kept(pid_t pid)
{
    for (int i = 0; i < KEPT_MAX; i++)
        if (pid > 0 && kept[i] == pid)
            return 1;
    return 0;
}

/* The exit of kept child `pid` if that is what a wait would report now, left unreaped (WNOWAIT):
 * its status as waitpid gives it in *status and 1, else 0 (or -errno). */
static int peek_exit(pid_t pid, int *status, int options)
{
    siginfo_t si;
    for (;;) {
        memset(&si, 0, sizeof si);
        if (waitid(P_PID, (id_t)pid, &si, WEXITED | WSTOPPED | WNOWAIT | __WALL | (options & WNOHANG)) == 0)
            break;
        if (errno != EINTR)
            return -errno;
    }
    if (si.si_pid == 0)
        return 0;                               /* WNOHANG: nothing to report */
    switch (si.si_code) {
    case CLD_EXITED:
        *status = (si.si_status & 0xff) << 8;
        return 1;
    case CLD_KILLED:
    case CLD_DUMPED:
        *status = (si.si_status & 0x7f) | (si.si_code == CLD_DUMPED ? 0x80 : 0);
        return 1;
    default:
        return 0;
    }
}

int incr_wait(pid_t pid, int *status, int options)
{
    if (is_kept(pid)) {
        int r = peek_exit(pid, status, options);
        if (r < 0)
            return r;
        if (r)
            return pid;
    }
    for (;;) {
        pid_t r = waitpid(pid, status, options | __WALL);
        if (r >= 0)
            return r;
        if (errno != EINTR)
            return -errno;
    }
}

long incr_getregset(pid_t pid, int type, void *buf, size_t len)
{
    struct iovec io = { buf, len };
    if (ptrace(PTRACE_GETREGSET, pid, (long)type, &io) < 0)
        return -errno;
    return (long)io.iov_len;
}

int incr_setregset(pid_t pid, int type, const void *buf, size_t len)
{
    struct iovec io = { (void *)buf, len };
    RET(ptrace(PTRACE_SETREGSET, pid, (long)type, &io));
}

int incr_get_rseq(pid_t pid, struct incr_rseq_cfg *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    RET(ptrace(PTRACE_GET_RSEQ_CONFIGURATION, pid, sizeof *cfg, cfg));
}

long incr_peeksiginfo(pid_t pid, uint64_t off, uint32_t flags, int32_t nr, void *buf)
{
    struct { uint64_t off; uint32_t flags; int32_t nr; } args = { off, flags, nr };
    long r = ptrace(PTRACE_PEEKSIGINFO, pid, &args, buf);
    return r < 0 ? -errno : r;
}

/* Resume the tracee and wait for its next stop; 0 for a syscall-stop, a
 * positive signal number for a signal-delivery-stop (siginfo saved), or a
 * negative errno. */
static int resume_until_stop(pid_t pid, int request, void *siginfo128)
{
    int status;
    if (ptrace(request, pid, 0, 0) < 0)
        return -errno;
    for (;;) {
        if (incr_wait(pid, &status, 0) < 0)
            return -errno;
        if (!WIFSTOPPED(status))
            return -ESRCH;
        int event = status >> 16;
        /* An injected clone3 with PTRACE_O_TRACECLONE stops inside the syscall
         * first; the new thread is auto-attached.  Carry on with the step. */
        /* A PTRACE_EVENT_STOP is a trap, not a signal: a group-stopped task
         * seized and then interrupted traps twice; a SIGCONT meanwhile traps
         * again (JOBCTL_TRAP_NOTIFY).  Nothing ran yet: carry on too. */
        if (event == PTRACE_EVENT_CLONE || event == PTRACE_EVENT_FORK || event == PTRACE_EVENT_VFORK
            || event == PTRACE_EVENT_STOP) {
            if (ptrace(request, pid, 0, 0) < 0)
                return -errno;
            continue;
        }
        break;
    }
    int sig = WSTOPSIG(status);
    if (request == PTRACE_SYSCALL ? sig == (SIGTRAP | 0x80) : (sig == SIGTRAP && (status >> 16) == 0))
        return 0;
    if (ptrace(PTRACE_GETSIGINFO, pid, 0, siginfo128) < 0)
        memset(siginfo128, 0, 128);
    return sig & 0x7f;
}

/* Test-only: SIGKILL incr itself at stage `fault` of a live remote syscall (INCR_REMOTE_FAULT_*),
 * so that tests can prove a job survives incr dying at each instant of an injection. */
static void fault_at(int fault, int stage)
{
    if (fault == stage)
        kill(getpid(), SIGKILL);
}

int incr_remote_syscall(pid_t pid, const struct user_regs_struct *base, uint64_t rip,
                        long nr, const long *args, long *ret, void *siginfo128,
                        const struct user_regs_struct *put_back, const uint64_t *mask_after, int fault)
{
    struct user_regs_struct r = *base;
    /* A live job's thread runs the syscall between syscall-stops: single-step
     * would leave TF set, and the job would die of SIGTRAP if incr died. */
    int live = put_back != NULL;
    int rc;

    r.rip = rip;
    r.rax = nr;
    r.rdi = args[0]; r.rsi = args[1]; r.rdx = args[2];
    r.r10 = args[3]; r.r8 = args[4]; r.r9 = args[5];
    r.orig_rax = (unsigned long long)-1;   /* no syscall restart on the way out */
    if (ptrace(PTRACE_SETREGS, pid, 0, &r) < 0)
        return -errno;
    /* Every signal blocked only while the registers are the injected ones: no signal
     * is delivered or intercepted on the way, and should incr die here, the safety
     * net's frame (engine/sigframe.py) restores the mask with the registers. */
    if (mask_after) {
        uint64_t all = ~0ULL;
        if (ptrace(PTRACE_SETSIGMASK, pid, sizeof all, &all) < 0)
            return -errno;
    }
    fault_at(fault, INCR_REMOTE_FAULT_SET);
    rc = resume_until_stop(pid, live ? PTRACE_SYSCALL : PTRACE_SINGLESTEP, siginfo128);
    if (rc == 0 && live) {
        fault_at(fault, INCR_REMOTE_FAULT_ENTRY);
        rc = resume_until_stop(pid, PTRACE_SYSCALL, siginfo128);   /* entry -> exit */
    }
    if (rc < 0)
        return rc;
    if (rc == 0) {
        if (ptrace(PTRACE_GETREGS, pid, 0, &r) < 0)
            return -errno;
        *ret = (long)r.rax;
        fault_at(fault, INCR_REMOTE_FAULT_EXIT);
    }
    /* rc > 0: a signal became deliverable and was dequeued instead of the
     * step; resuming with data=0 will suppress it, the caller re-queues it. */
    if (mask_after && ptrace(PTRACE_SETSIGMASK, pid, sizeof *mask_after, mask_after) < 0)
        return -errno;
    if (put_back && ptrace(PTRACE_SETREGS, pid, 0, put_back) < 0)
        return -errno;
    return rc;
}

typedef ssize_t (*vm_fn)(pid_t, const struct iovec *, unsigned long, const struct iovec *, unsigned long,
                         unsigned long);

/* Move the pairs in order; a partial transfer (short page, fault) resumes at
 * the first byte not moved so that a genuine fault is reported as EFAULT. */
static long vm_batch(vm_fn fn, pid_t pid, char *local, const uint64_t *addrs, const uint64_t *lens, size_t n)
{
    enum { BATCH = 1024 };   /* IOV_MAX */
    struct iovec liov, riov[BATCH];
    size_t i = 0;
    uint64_t skip = 0;       /* bytes of pair i already moved */
    long total = 0;

    while (i < n) {
        size_t k = 0, want = 0;
        for (size_t j = i; j < n && k < BATCH; j++, k++) {
            uint64_t off = (j == i) ? skip : 0;
            riov[k].iov_base = (void *)(uintptr_t)(addrs[j] + off);
            riov[k].iov_len = lens[j] - off;
            want += riov[k].iov_len;
        }
        liov.iov_base = local + total;
        liov.iov_len = want;
        ssize_t got = fn(pid, &liov, 1, riov, k, 0);
        if (got < 0)
            return -errno;
        if (got == 0 && want > 0)
            return -EFAULT;
        total += got;
        /* advance (i, skip) by got bytes */
        uint64_t left = (uint64_t)got;
        while (left > 0) {
            uint64_t rem = lens[i] - skip;
            if (left >= rem) { left -= rem; i++; skip = 0; }
            else { skip += left; left = 0; }
        }
        while (i < n && lens[i] == skip) { i++; skip = 0; }
    }
    return total;
}

long incr_vm_read(pid_t pid, void *local, const uint64_t *addrs, const uint64_t *lens, size_t n)
{
    return vm_batch(process_vm_readv, pid, local, addrs, lens, n);
}

static ssize_t vm_writev_adapter(pid_t pid, const struct iovec *l, unsigned long ln, const struct iovec *r,
                                 unsigned long rn, unsigned long fl)
{
    return process_vm_writev(pid, l, ln, r, rn, fl);
}

long incr_vm_write(pid_t pid, const void *local, const uint64_t *addrs, const uint64_t *lens, size_t n)
{
    return vm_batch(vm_writev_adapter, pid, (char *)local, addrs, lens, n);
}

long incr_pagemap_scan(int pagemap_fd, struct incr_pm_scan_arg *arg)
{
    arg->size = sizeof *arg;
    long r = ioctl(pagemap_fd, PAGEMAP_SCAN_IOCTL, arg);
    return r < 0 ? -errno : r;
}

/* Every signal blocked and at its default, every descriptor from 3 up
 * closed but `keep` (-1: none). */
/* clone3() like fork (the child gets SIGCHLD-at-exit semantics and a copy of our stack),
 * with clone `flags`, and with the PID *tid when tid is not NULL.  As syscall(2) returns. */
static long clone3_child(uint64_t flags, pid_t *tid)
{
    struct clone_args ca;
    memset(&ca, 0, sizeof ca);
    ca.flags = flags;
    ca.exit_signal = SIGCHLD;
    if (tid != NULL) {
        ca.set_tid = (uint64_t)(uintptr_t)tid;
        ca.set_tid_size = 1;
    }
    return syscall(SYS_clone3, &ca, sizeof ca);
}

static void stub_reset(int keep)
{
    sigset_t all;
    sigfillset(&all);
    syscall(SYS_rt_sigprocmask, SIG_SETMASK, &all, NULL, 8);
    for (int sig = 1; sig <= 64; sig++) {
        /* the kernel's struct sigaction, not glibc's: this is the raw syscall */
        struct { void *handler; unsigned long flags; void *restorer; uint64_t mask; } act = { SIG_DFL, 0, 0, 0 };
        if (sig != SIGKILL && sig != SIGSTOP)
            syscall(SYS_rt_sigaction, sig, &act, NULL, 8);
    }
    if (keep > 3)
        syscall(SYS_close_range, 3, keep - 1, 0);
    syscall(SYS_close_range, keep >= 3 ? keep + 1 : 3, ~0U, 0);
}

static void stub_main(int flags) __attribute__((noreturn));
static void stub_main(int flags)
{
    /* Only raw syscalls from here on: this is a copy of a (possibly threaded)
     * Python process and must never run its code again. */
    stub_reset(-1);
    if (flags & INCR_STUB_SETSID)
        syscall(SYS_setsid);
    else if (flags & INCR_STUB_SETPGID)
        syscall(SYS_setpgid, 0, 0);
    if (flags & INCR_STUB_NO_TRACEME) {
        /* Stop once so that the namespace's init knows the reset is done; it
         * continues us with SIGCONT, which must not stay pending (unblocked,
         * default action: discarded).  Then wait to be seized: a group-stop
         * would outlive the tracer and leave the restored job stopped. */
        sigset_t cont;
        sigemptyset(&cont);
        sigaddset(&cont, SIGCONT);
        syscall(SYS_rt_sigprocmask, SIG_UNBLOCK, &cont, NULL, 8);
        syscall(SYS_kill, syscall(SYS_getpid), SIGSTOP);
        for (;;)
            syscall(SYS_pause);
    }
    if (syscall(SYS_ptrace, PTRACE_TRACEME, 0, 0, 0) < 0)
        syscall(SYS_exit_group, 126);
    syscall(SYS_kill, syscall(SYS_getpid), SIGSTOP);
    syscall(SYS_exit_group, 127);   /* the restorer never lets it get here */
    __builtin_unreachable();
}

/* The leader of the stub's new session: a copy of the (possibly threaded) Python
 * process too, so raw syscalls only.  Exits 0, or with the errno of a failure. */
static void session_leader(pid_t want, int flags) __attribute__((noreturn));
static void session_leader(pid_t want, int flags)
{
    if (syscall(SYS_setsid) < 0)
        syscall(SYS_exit_group, errno);
    struct clone_args ca;
    memset(&ca, 0, sizeof ca);
    pid_t tid = want;
    ca.flags = CLONE_PARENT;           /* exit_signal must be 0: the stub gets ours, SIGCHLD */
    ca.set_tid = (uint64_t)(uintptr_t)&tid;
    ca.set_tid_size = 1;
    long c = syscall(SYS_clone3, &ca, sizeof ca);
    if (c < 0)
        syscall(SYS_exit_group, errno);
    if (c == 0)
        stub_main(flags & ~INCR_STUB_OWN_SESSION);
    syscall(SYS_exit_group, 0);
    __builtin_unreachable();
}

/* A helper child running `helper(want, flags)`, which makes the stub with PID `want` and
 * exits: `want`, or -errno from the helper's exit status. */
static long through_helper(pid_t want, int flags, void (*helper)(pid_t, int))
{
    long h = clone3_child(0, NULL);
    if (h < 0)
        return -errno;
    if (h == 0)
        helper(want, flags);
    int status;
    while (waitpid((pid_t)h, &status, __WALL) < 0)
        if (errno != EINTR)
            return -errno;
    if (!WIFEXITED(status))
        return -ECHILD;
    return WEXITSTATUS(status) ? -WEXITSTATUS(status) : want;
}

long incr_spawn_stub(pid_t want, int flags)
{
    pid_t tid = want;
    if (flags & INCR_STUB_OWN_SESSION)
        return through_helper(want, flags, session_leader);
    long c = clone3_child(0, &tid);
    if (c < 0)
        return -errno;
    if (c == 0)
        stub_main(flags);
    return c;
}

/* Wait for the SIGCHLD (blocked, so queued) that says child `pid` did `code`. */
static void await_chld(pid_t pid, int code)
{
    sigset_t chld;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    siginfo_t si;
    for (;;) {
        long r = syscall(SYS_rt_sigtimedwait, &chld, &si, NULL, 8);
        if (r < 0 && errno != EINTR)
            syscall(SYS_exit_group, errno);
        if (r == SIGCHLD && si.si_pid == pid && si.si_code == code)
            return;
    }
}

/* The first parent of an adopted stub (see incr_spawn_adopted): clones it with PID
 * `want`, continues it once it has reset itself (its SIGSTOP), and exits when the
 * stub has said so (CLD_CONTINUED), its wait status collected: the stub's next
 * parent is told nothing.  With INCR_STUB_OWN_SESSION it leads the stub's new
 * session first, as session_leader() does. */
static void adopter(pid_t want, int flags) __attribute__((noreturn));
static void adopter(pid_t want, int flags)
{
    stub_reset(-1);                    /* SIGCHLD blocked and at its default: queued for us */
    if ((flags & INCR_STUB_OWN_SESSION) && syscall(SYS_setsid) < 0)
        syscall(SYS_exit_group, errno);
    flags &= ~INCR_STUB_OWN_SESSION;
    pid_t tid = want;
    long c = clone3_child(0, &tid);
    if (c < 0)
        syscall(SYS_exit_group, errno);
    if (c == 0)
        stub_main(flags | INCR_STUB_NO_TRACEME);
    await_chld(want, CLD_STOPPED);
    syscall(SYS_kill, want, SIGCONT);
    await_chld(want, CLD_CONTINUED);
    int status;
    syscall(SYS_wait4, want, &status, WCONTINUED | WNOHANG | __WALL, NULL);
    syscall(SYS_exit_group, 0);
    __builtin_unreachable();
}

long incr_spawn_adopted(pid_t want, int flags)
{
    return through_helper(want, flags, adopter);
}

int incr_pidfd_getfd(int pidfd, int fd)
{
    long r = syscall(SYS_pidfd_getfd, pidfd, fd, 0);
    return r < 0 ? -errno : (int)r;
}

int incr_tgkill(pid_t tgid, pid_t tid, int sig) { RET(syscall(SYS_tgkill, tgid, tid, sig)); }

long incr_kcmp(pid_t pid1, pid_t pid2, int type, unsigned long idx1, unsigned long idx2)
{
    long r = syscall(SYS_kcmp, pid1, pid2, type, idx1, idx2);
    return r < 0 ? -errno : r;
}

long incr_get_robust_list(pid_t tid, uint64_t *head, uint64_t *len)
{
    void *h = NULL;
    size_t l = 0;
    if (syscall(SYS_get_robust_list, tid, &h, &l) < 0)
        return -errno;
    *head = (uint64_t)(uintptr_t)h;
    *len = l;
    return 0;
}

int incr_userfaultfd(int flags)
{
    long r = syscall(SYS_userfaultfd, flags);
    return r < 0 ? -errno : (int)r;
}

long incr_uffd_api(int uffd, uint64_t features, uint64_t *supported)
{
    struct uffdio_api api = { .api = UFFD_API, .features = features };
    if (ioctl(uffd, UFFDIO_API, &api) < 0)
        return -errno;
    *supported = api.features;
    return 0;
}

long incr_uffd_register_wp(int uffd, uint64_t start, uint64_t len)
{
    struct uffdio_register reg = { .range = { start, len }, .mode = UFFDIO_REGISTER_MODE_WP };
    return ioctl(uffd, UFFDIO_REGISTER, &reg) < 0 ? -errno : 0;
}

long incr_uffd_writeprotect(int uffd, uint64_t start, uint64_t len)
{
    struct uffdio_writeprotect wp = { .range = { start, len }, .mode = UFFDIO_WRITEPROTECT_MODE_WP };
    return ioctl(uffd, UFFDIO_WRITEPROTECT, &wp) < 0 ? -errno : 0;
}

#define PM_PRESENT (1ULL << 63)
#define PM_SWAPPED (1ULL << 62)
#define PM_FILE (1ULL << 61)
#define PM_SOFT_DIRTY (1ULL << 55)
/* A pte marker (userfaultfd write-protection of an absent page) shows in
 * pagemap as a swap entry of the last swap type: it holds no data. */
#define PM_SWAP_TYPE(e) ((e) & 0x1f)
#define SWP_PTE_MARKER 31

long incr_pagemap_runs(int pagemap_fd, uint64_t start, uint64_t end, uint64_t *out, size_t max_runs)
{
    enum { CHUNK = 4096 };
    uint64_t entries[CHUNK];
    size_t runs = 0;
    uint64_t addr = start;

    while (addr < end) {
        size_t n = (end - addr) / 4096;
        if (n > CHUNK) n = CHUNK;
        ssize_t got = pread(pagemap_fd, entries, n * 8, (off_t)(addr / 4096 * 8));
        if (got < 0)
            return -errno;
        if (got == 0)
            return -EIO;
        n = (size_t)got / 8;
        for (size_t i = 0; i < n; i++, addr += 4096) {
            uint64_t e = entries[i];
            int marker = !(e & PM_PRESENT) && (e & PM_SWAPPED) && PM_SWAP_TYPE(e) == SWP_PTE_MARKER;
            uint64_t flags = ((e & (PM_PRESENT | PM_SWAPPED)) && !marker ? 1 : 0) | ((e & PM_SOFT_DIRTY) ? 2 : 0)
                             | ((e & PM_FILE) ? 4 : 0) | (marker ? 8 : 0);
            if (runs > 0 && out[3 * (runs - 1) + 1] == addr && out[3 * (runs - 1) + 2] == flags) {
                out[3 * (runs - 1) + 1] = addr + 4096;
                continue;
            }
            if (runs == max_runs)
                return (long)runs;
            out[3 * runs] = addr;
            out[3 * runs + 1] = addr + 4096;
            out[3 * runs + 2] = flags;
            runs++;
        }
    }
    return (long)runs;
}

/* PID 1 of a new PID namespace: creates the job's root stub with PID `root`
 * there, writes one byte to `ready_fd` once the stub has reset itself and
 * waits to be seized (incr is not its parent), then reaps whatever ends in
 * the namespace and exits with the root's status (128+N for signal N) when
 * the root ends -- which ends the whole namespace, as for a container. */
static void pidns_init(pid_t root, int flags, int ready_fd) __attribute__((noreturn));
static void pidns_init(pid_t root, int flags, int ready_fd)
{
    stub_reset(ready_fd);
    syscall(SYS_prctl, PR_SET_NAME, "incr-pidns-init", 0, 0, 0);
    if (flags & INCR_STUB_OWN_SESSION)
        syscall(SYS_setsid);           /* the root's session: not the caller's (see incr_native.h) */
    flags &= ~INCR_STUB_OWN_SESSION;
    pid_t tid = root;
    long c = clone3_child(0, &tid);
    if (c < 0)
        syscall(SYS_exit_group, 125);
    if (c == 0)
        stub_main(flags | INCR_STUB_NO_TRACEME);
    int status;
    while (syscall(SYS_wait4, root, &status, __WALL | WUNTRACED, NULL) < 0 && errno == EINTR)
        ;
    if (!WIFSTOPPED(status))
        syscall(SYS_exit_group, 124);
    syscall(SYS_kill, root, SIGCONT);
    char one = 1;
    syscall(SYS_write, ready_fd, &one, 1);
    /* Nothing of incr's kept open: not its stdout, which `$(incr restore --detach)` reads to EOF. */
    syscall(SYS_close_range, 0, ~0U, 0);
    for (;;) {
        long w = syscall(SYS_wait4, -1, &status, __WALL, NULL);
        if (w < 0) {
            if (errno == EINTR) continue;
            syscall(SYS_exit_group, 0);
        }
        if (w == root) {
            int code = WIFSIGNALED(status) ? 128 + WTERMSIG(status) : WEXITSTATUS(status);
            syscall(SYS_exit_group, code);
        }
    }
}

long incr_spawn_pidns(pid_t root, int flags, int ready_fd)
{
    long c = clone3_child(CLONE_NEWPID | ((flags & INCR_NS_IPC) ? CLONE_NEWIPC : 0), NULL);
    if (c < 0)
        return -errno;
    if (c == 0)
        pidns_init(root, flags & ~INCR_NS_IPC, ready_fd);
    return c;
}

/* Protocol buffers wire format, as much as a PackTrailer needs (incr/proto/store.proto). */
static int pb_varint(const uint8_t **p, const uint8_t *end, uint64_t *out)
{
    uint64_t v = 0;
    for (int shift = 0; shift < 64 && *p < end; shift += 7) {
        uint8_t b = *(*p)++;
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *out = v;
            return 0;
        }
    }
    return -1;
}

/* Skip a field of wire type `wt`, or return its payload (wire type 2) in *data, *size. */
static int pb_field(const uint8_t **p, const uint8_t *end, unsigned wt, const uint8_t **data, uint64_t *size)
{
    uint64_t v;
    switch (wt) {
    case 0:
        return pb_varint(p, end, &v);
    case 1:
        if (end - *p < 8) return -1;
        *p += 8;
        return 0;
    case 2:
        if (pb_varint(p, end, &v) || v > (uint64_t)(end - *p)) return -1;
        *data = *p;
        *size = v;
        *p += v;
        return 0;
    case 5:
        if (end - *p < 4) return -1;
        *p += 4;
        return 0;
    default:
        return -1;
    }
}

static int frame_cmp(const void *a, const void *b)
{
    uint64_t x = ((const struct incr_frame *)a)->offset, y = ((const struct incr_frame *)b)->offset;
    return x < y ? -1 : x > y;
}

/* A Frame's (store.proto) varint fields by number, and its digests. */
enum { FRAME_KIND = 1, FRAME_CODEC = 2, FRAME_OFFSET = 4, FRAME_LENGTH = 5, FRAME_RAW_LENGTH = 6, FRAME_DICT = 8,
       FRAME_FIELDS = 9 };
#define FRAME_DIGESTS_TAG ((7 << 3) | 2)

/* Parse one serialized Frame: f[number] for its varint fields (0 where absent), *dig and *dig_len
 * its digests (NULL, 0 where absent); 0, or -1 if it is not valid protobuf. */
static int pb_frame(const uint8_t *data, uint64_t size, uint64_t f[FRAME_FIELDS], const uint8_t **dig,
                    uint64_t *dig_len)
{
    memset(f, 0, sizeof(uint64_t) * FRAME_FIELDS);
    *dig = NULL;
    *dig_len = 0;
    for (const uint8_t *q = data, *end = data + size; q < end;) {
        uint64_t key, v = 0, fsize = 0;
        const uint8_t *fdata = NULL;
        if (pb_varint(&q, end, &key))
            return -1;
        if ((key & 7) == 0) {
            if (pb_varint(&q, end, &v))
                return -1;
            if ((key >> 3) < FRAME_FIELDS)
                f[key >> 3] = v;
        } else {
            if (pb_field(&q, end, key & 7, &fdata, &fsize))
                return -1;
            if (key == FRAME_DIGESTS_TAG) {
                *dig = fdata;
                *dig_len = fsize;
            }
        }
    }
    return 0;
}

long incr_trailer_table(const uint8_t *buf, size_t len, struct incr_frame *frames, size_t max_frames,
                        uint8_t *digests, size_t max_digests)
{
    const uint8_t *p = buf, *end = buf + len;
    size_t n = 0, total = 0;
    int sorted = 1;
    while (p < end) {
        uint64_t key, size = 0;
        const uint8_t *data = NULL;
        if (pb_varint(&p, end, &key) || pb_field(&p, end, key & 7, &data, &size))
            return -1;
        if (key != ((2 << 3) | 2))             /* PackTrailer.frames */
            continue;
        uint64_t f[FRAME_FIELDS], dig_len;
        const uint8_t *dig;
        if (pb_frame(data, size, f, &dig, &dig_len))
            return -1;
        uint64_t offset = f[FRAME_OFFSET], length = f[FRAME_LENGTH];
        if (length == 0)
            continue;                             /* an empty blob: its offset is the next frame's */
        if (dig_len == 0 || dig_len % 16 || dig_len / 16 > UINT32_MAX)
            return -1;
        if (n == max_frames || dig_len / 16 > max_digests - total)
            return -2;
        if (n && offset <= frames[n - 1].offset)
            sorted = 0;
        frames[n].offset = offset;
        frames[n].first = (uint32_t)total;
        frames[n].count = (uint32_t)(dig_len / 16);
        memcpy(digests + 16 * total, dig, dig_len);
        total += dig_len / 16;
        n++;
    }
    if (!sorted) {
        qsort(frames, n, sizeof *frames, frame_cmp);
        for (size_t i = 1; i < n; i++)
            if (frames[i].offset == frames[i - 1].offset)
                return -1;                        /* two frames of bytes at one offset */
    }
    return (long)n;
}

static void put_le(uint8_t *p, uint64_t v, unsigned n)
{
    for (unsigned i = 0; i < n; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

long incr_index_entries(const uint8_t *buf, size_t len, const uint8_t *pack, uint32_t kind, uint8_t *keys,
                        uint8_t *values, uint32_t *lens, size_t max)
{
    const uint8_t *dicts[INCR_INDEX_MAX_DICTS];
    size_t ndicts = 0, n = 0;
    /* The dictionaries first: the trailer lists them after the frames that name them. */
    for (const uint8_t *p = buf, *end = buf + len; p < end;) {
        uint64_t key, size = 0;
        const uint8_t *data = NULL;
        if (pb_varint(&p, end, &key) || pb_field(&p, end, key & 7, &data, &size))
            return -1;
        if (key == ((3 << 3) | 2)) {                /* PackTrailer.dicts */
            if (size != 16 || ndicts == INCR_INDEX_MAX_DICTS)
                return -1;
            dicts[ndicts++] = data;
        }
    }
    for (const uint8_t *p = buf, *end = buf + len; p < end;) {
        uint64_t key, size = 0;
        const uint8_t *data = NULL;
        if (pb_varint(&p, end, &key) || pb_field(&p, end, key & 7, &data, &size))
            return -1;
        if (key != ((2 << 3) | 2))                  /* PackTrailer.frames */
            continue;
        uint64_t f[FRAME_FIELDS], dig_len;
        const uint8_t *dig;
        if (pb_frame(data, size, f, &dig, &dig_len))
            return -1;
        if (f[FRAME_KIND] != kind)
            continue;
        if (dig_len % 16 || (kind == 1 && dig_len != 16) || dig_len / 16 > 0xffff || f[FRAME_DICT] > ndicts
            || f[FRAME_LENGTH] > UINT32_MAX || f[FRAME_RAW_LENGTH] > UINT32_MAX || f[FRAME_CODEC] > 0xff)
            return -1;
        for (size_t slot = 0; slot < dig_len / 16; slot++) {
            if (n == max)
                return -2;
            uint8_t *v = values + INCR_INDEX_VALUE_MAX * n;
            memcpy(keys + 16 * n, dig + 16 * slot, 16);
            memcpy(v, pack, 32);
            put_le(v + 32, f[FRAME_OFFSET], 8);
            put_le(v + 40, f[FRAME_LENGTH], 4);
            put_le(v + 44, f[FRAME_RAW_LENGTH], 4);
            put_le(v + 48, slot, 2);
            v[50] = (uint8_t)f[FRAME_CODEC];
            lens[n] = 51;
            if (kind == 0 && f[FRAME_DICT]) {
                memcpy(v + 51, dicts[f[FRAME_DICT] - 1], 16);
                lens[n] = 67;
            }
            n++;
        }
    }
    return (long)n;
}

/* The frame of `frames` at `offset`, or NULL; `hint` is where the last search ended (requests
 * come mostly in offset order, so the next is usually there or just after). */
static const struct incr_frame *find_frame(const struct incr_frame *frames, size_t n, uint64_t offset, size_t *hint)
{
    size_t h = *hint;
    if (h < n && frames[h].offset == offset)
        return &frames[h];
    if (h + 1 < n && frames[h + 1].offset == offset) {
        *hint = h + 1;
        return &frames[h + 1];
    }
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (frames[mid].offset < offset)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < n && frames[lo].offset == offset) {
        *hint = lo;
        return &frames[lo];
    }
    return NULL;
}

long incr_check_reads(const struct incr_frame *frames, size_t n, const uint8_t *digests,
                      const struct incr_read *reads, size_t first, size_t count,
                      const uint8_t *want, size_t want_pages)
{
    size_t hint = 0;
    for (size_t k = first; k < first + count; k++) {
        const struct incr_read *r = &reads[k];
        const struct incr_frame *f = find_frame(frames, n, r->offset, &hint);
        if (f == NULL || r->slot >= f->count || r->page >= want_pages
            || memcmp(digests + 16 * ((size_t)f->first + r->slot), want + 16 * (size_t)r->page, 16) != 0)
            return (long)k;
    }
    return -1;
}
