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
/* The index entries (index.py: key, the 16-byte digest or blob id; value, LOCATION and the
 * dictionary's blob id for a frame that has one) of the frames of kind `kind` (Frame.Kind: 0
 * pages, 1 blobs) of a serialized PackTrailer of pack `pack` (its 32-byte name): entry i's key at
 * keys + 16 * i, its value at values + INCR_INDEX_VALUE_MAX * i, lens[i] bytes.  The number of
 * entries; -1: not a valid trailer; -2: more than max. */
#define INCR_INDEX_VALUE_MAX 67
#define INCR_INDEX_MAX_DICTS 4096
long incr_index_entries(const uint8_t *buf, size_t len, const uint8_t *pack, uint32_t kind, uint8_t *keys,
                        uint8_t *values, uint32_t *lens, size_t max);
/* The frames of a serialized PackTrailer that hold one byte or more, by offset, for the read
 * path's check that a frame holds the page asked for.  The number listed; -1: not a valid
 * trailer; -2: more than max_frames frames or max_digests digests. */
long incr_trailer_table(const uint8_t *buf, size_t len, struct incr_frame *frames, size_t max_frames,
                        uint8_t *digests, size_t max_digests);
/* One page to read, planned by incr_plan_reads from its index entry: the frame (pack, offset,
 * stored length, decoded length, codec, dictionary: index into the plan's dictionary ids or
 * UINT32_MAX for none), the page's slot in it, the pack's group in the plan, and `page`, the
 * page's place in the caller's request (and in its output buffer).  zero: the zero page. */
#define INCR_CODEC_RAW 0
#define INCR_CODEC_ZSTD 1
struct incr_read {
    uint8_t pack[32];
    uint64_t offset;
    uint64_t at;        /* where decoding finds the frame: offset in the mapped pack, or in a fetch buffer */
    uint32_t length, raw_length, page, group, dict;
    uint16_t slot;
    uint8_t codec, zero;
};
/* groups: packs (group_first[g] = the first read of group g); dicts: distinct dictionaries;
 * raw: reads of RAW frames (their pages' numbers in raw[]); bad: the entry not understood. */
struct incr_plan { size_t groups, dicts, raw, zeros, bad; };
/* Parse n index entries, concatenated in `values` (lens[i] bytes each; 0: the zero page), into
 * reads[n], sorted by pack, offset and slot (zero pages first).  group_first, raw: n entries;
 * dicts: 16 * n bytes.  0, -1 (an entry of a length no entry has: plan->bad), or -ENOMEM. */
long incr_plan_reads(const uint8_t *values, const uint32_t *lens, size_t n, struct incr_read *reads,
                     uint32_t *group_first, uint8_t *dicts, uint32_t *raw, struct incr_plan *plan);
/* Check reads[first, first + count) (one pack, whose frame table is frames/digests) against
 * the trailer: read r takes page r.slot of the frame at r.offset and wants the page whose
 * digest is number r.page of `want` (want_pages of them).  The index of the first read whose
 * frame holds another page (or where no frame is), or -1 when all are right. */
long incr_check_reads(const struct incr_frame *frames, size_t n, const uint8_t *digests,
                      const struct incr_read *reads, size_t first, size_t count,
                      const uint8_t *want, size_t want_pages);
/* The frames of n pages encoded by incr_encode_pages (page i: lens[i] bytes at dst + stride * i,
 * or, when lens[i] is 0, raw at src + 4096 * i), appended to a pack at `offset`: their stored
 * bytes, in order, into out (4096 * n bytes of room), and each one's PackTrailer.frames entry
 * (field 2, a Frame: PAGES, its codec, `level` if zstd, offset, length, raw_length 4096, the
 * page's digest from digests, `dict` if zstd) serialized as protobuf's deterministic encoding
 * has it, into frames (INCR_FRAME_ENTRY_MAX * n bytes of room).  Returns the bytes written to
 * frames; *stored: to out. */
#define INCR_FRAME_ENTRY_MAX 64
long incr_pack_pages(const uint8_t *src, size_t n, const uint8_t *dst, size_t stride, const uint32_t *lens,
                     const uint8_t *digests, uint64_t offset, uint32_t level, uint32_t dict,
                     uint8_t *out, uint64_t *stored, uint8_t *frames);
/* Read from fd (the pack of reads[first, first + count): one group of a plan, in offset order)
 * the frames those reads take, into buf from *used on (buf: cap bytes, 4096-aligned; *used a
 * multiple of 4096), and point each read's `at` at its frame there (decode with bases[g] = buf).
 * Whole 4096-byte blocks are read, as O_DIRECT wants; frames less than `gap` bytes apart are
 * read as one span.  A file that refuses a direct read (EINVAL) is read through the page cache
 * from then on, and with `drop` what was read is dropped from it again (POSIX_FADV_DONTNEED).
 * 0 (*used advanced); -1: room for *need bytes more is wanted (nothing read); -2: the file
 * ends before the frame of read *bad; -errno: a read failed (*bad: the read). */
long incr_fetch_reads(struct incr_read *reads, size_t first, size_t count, int fd, uint8_t *buf,
                      uint64_t cap, uint64_t *used, uint64_t gap, int drop, uint64_t *need, size_t *bad);
/* Decode a plan's n reads into out (4096 bytes a page, by r.page), on up to `threads` threads;
 * bases[g]/sizes[g]: pack g mapped; ddicts: the plan's dictionaries (incr_ddict_new).  Each
 * frame is decoded once.  0, or -1 with *err naming the read that failed and why.  *frames:
 * frames decoded. */
#define INCR_DECODE_THREADS 8
#define INCR_DECODE_TRUNCATED 1     /* the frame runs past the end of its pack */
#define INCR_DECODE_LENGTH 2        /* it decodes to another length than recorded */
#define INCR_DECODE_CODEC 3
#define INCR_DECODE_ZSTD 4          /* zstd refused it (what: zstd's reason) */
#define INCR_DECODE_DICT 5
#define INCR_DECODE_SLOT 6          /* the page's slot lies past the frame's end */
#define INCR_DECODE_NOMEM 7
struct incr_decode_error { size_t read; int code; char what[96]; };
long incr_decode_reads(const struct incr_read *reads, size_t n, const uint8_t *const *bases,
                       const uint64_t *sizes, void *const *ddicts, size_t ndicts, uint8_t *out,
                       int threads, struct incr_decode_error *err, uint64_t *frames);
/* A zstd dictionary prepared for decoding (NULL: not a dictionary, or no memory). */
void *incr_ddict_new(const void *data, size_t len);
void incr_ddict_free(void *ddict);
/* Page frames for the write side: an encoder of `threads` zstd contexts at `level`; pages of
 * src compressed each into its own frame (content size, checksum, no dictionary id) at
 * dst + stride * i (stride >= ZSTD_compressBound(4096)); lens[i]: its length, or 0 when the
 * frame would not be min_ratio times smaller than the page (stored raw).  cdict: NULL or a
 * dictionary (incr_cdict_new).  0, -1 - i (zstd refused page i), or -EINVAL. */
void *incr_encoder_new(int threads, int level);
void incr_encoder_free(void *encoder);
void *incr_cdict_new(const void *data, size_t len, int level);
void incr_cdict_free(void *cdict);
long incr_encode_pages(void *encoder, const uint8_t *src, size_t n, const void *cdict, double min_ratio,
                       uint8_t *dst, size_t stride, uint32_t *lens);
/* The page digests (BLAKE3-128) of n pages of buf: page k at buf + 4096 * index[k] (index NULL:
 * page k), its 16 bytes at out + 16 * k; an all-zero page gets 16 zero bytes (not hashed).
 * Returns how many pages were all zero. */
size_t incr_page_digests(const uint8_t *buf, const uint32_t *index, size_t n, uint8_t *out);
/* Page index[k] of buf (index NULL: page k) checked against the digest at want + 16 * index[k],
 * for every k whose digest is not the zero one; the first k that differs, or -1. */
long incr_check_digests(const uint8_t *buf, const uint32_t *index, size_t n, const uint8_t *want);
