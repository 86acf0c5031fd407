/* The page store's read path in C: a restore reads every page of a job, and per-page work
 * in Python (parse the index entry, sort, decompress, copy) cost 3-4 us a page, more than
 * decompressing it.  Here a batch of index entries becomes a sorted plan in one call, and the
 * plan is decoded straight into the caller's buffer by up to INCR_DECODE_THREADS threads,
 * with the GIL released (cffi releases it around every call).
 *
 * Nothing here trusts the index entries or the packs: every frame is checked to lie inside its
 * pack, to decode to its recorded length, and (zstd) to pass its content checksum.  Pages of
 * RAW frames have no checksum; the caller hashes them (plan->raw lists them). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zstd.h>

#include "incr_native.h"

#define PAGE 4096u
/* An index entry: pack name (32), offset u64, length u32, raw length u32, slot u16, codec u8;
 * then the dictionary's 16-byte blob id when the frame has one (LOCATION in index.py). */
#define ENTRY_SIZE 51u
#define DICT_ID_SIZE 16u
/* The largest page frame any store version wrote: 64 pages (before version 3). */
#define MAX_FRAME_RAW (64u * PAGE)

static uint64_t get_le(const uint8_t *p, unsigned n)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < n; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

static int read_order(const void *a, const void *b)
{
    const struct incr_read *x = a, *y = b;
    if (x->zero != y->zero)
        return x->zero ? -1 : 1;
    int c = memcmp(x->pack, y->pack, sizeof x->pack);
    if (c)
        return c;
    if (x->offset != y->offset)
        return x->offset < y->offset ? -1 : 1;
    if (x->slot != y->slot)
        return x->slot < y->slot ? -1 : 1;
    return x->page < y->page ? -1 : x->page > y->page;
}

static uint32_t dict_index(const uint8_t *id, uint8_t *dicts, size_t *ndicts, uint32_t last)
{
    if (last != UINT32_MAX && memcmp(dicts + DICT_ID_SIZE * last, id, DICT_ID_SIZE) == 0)
        return last;
    for (size_t d = 0; d < *ndicts; d++)
        if (memcmp(dicts + DICT_ID_SIZE * d, id, DICT_ID_SIZE) == 0)
            return (uint32_t)d;
    memcpy(dicts + DICT_ID_SIZE * *ndicts, id, DICT_ID_SIZE);
    return (uint32_t)(*ndicts)++;
}

long incr_plan_reads(const uint8_t *values, const uint32_t *lens, size_t n, struct incr_read *reads,
                     uint32_t *group_first, uint8_t *dicts, uint32_t *raw, struct incr_plan *plan)
{
    const uint8_t *v = values;
    memset(plan, 0, sizeof *plan);
    for (size_t i = 0; i < n; i++) {
        struct incr_read *r = &reads[i];
        memset(r, 0, sizeof *r);
        r->page = (uint32_t)i;
        r->dict = UINT32_MAX;
        if (lens[i] == 0) {
            r->zero = 1;
            plan->zeros++;
            continue;
        }
        if (lens[i] != ENTRY_SIZE && lens[i] != ENTRY_SIZE + DICT_ID_SIZE) {
            plan->bad = i;
            return -1;
        }
        memcpy(r->pack, v, 32);
        r->offset = r->at = get_le(v + 32, 8);
        r->length = (uint32_t)get_le(v + 40, 4);
        r->raw_length = (uint32_t)get_le(v + 44, 4);
        r->slot = (uint16_t)get_le(v + 48, 2);
        r->codec = v[50];
        v += lens[i];
    }
    qsort(reads, n, sizeof *reads, read_order);
    /* Dictionaries once the reads are sorted: a pack's frames with one dictionary are
     * neighbours, so the last one found is nearly always the one. */
    v = values;
    const uint8_t **where = malloc((n ? n : 1) * sizeof *where);
    if (where == NULL)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        where[i] = v;
        v += lens[i];
    }
    uint32_t last = UINT32_MAX;
    for (size_t k = 0; k < n; k++) {
        struct incr_read *r = &reads[k];
        if (r->zero)
            continue;
        if (k == 0 || reads[k - 1].zero || memcmp(reads[k - 1].pack, r->pack, 32) != 0)
            group_first[plan->groups++] = (uint32_t)k;
        r->group = plan->groups - 1;
        if (r->codec == INCR_CODEC_RAW)
            raw[plan->raw++] = r->page;
        if (lens[r->page] == ENTRY_SIZE + DICT_ID_SIZE)
            r->dict = last = dict_index(where[r->page] + ENTRY_SIZE, dicts, &plan->dicts, last);
    }
    free(where);
    return 0;
}

struct decode_job {
    const struct incr_read *reads;
    size_t first, end;
    const uint8_t *const *bases;
    const uint64_t *sizes;
    void *const *ddicts;
    size_t ndicts;
    uint8_t *out;
    struct incr_decode_error err;
    uint64_t frames;
};

static uint8_t *put_varint(uint8_t *p, uint64_t v)
{
    while (v >= 0x80) {
        *p++ = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    *p++ = (uint8_t)v;
    return p;
}

/* Frame's fields (store.proto), each tag = field number << 3 | wire type; proto3 leaves out
 * fields at their default (0), and the deterministic encoding writes them by number. */
enum { F_CODEC = 2 << 3, F_LEVEL = 3 << 3, F_OFFSET = 4 << 3, F_LENGTH = 5 << 3, F_RAW_LENGTH = 6 << 3,
       F_DIGESTS = 7 << 3 | 2, F_DICT = 8 << 3, TRAILER_FRAMES = 2 << 3 | 2 };

long incr_pack_pages(const uint8_t *src, size_t n, const uint8_t *dst, size_t stride, const uint32_t *lens,
                     const uint8_t *digests, uint64_t offset, uint32_t level, uint32_t dict,
                     uint8_t *out, uint64_t *stored, uint8_t *frames)
{
    uint8_t *f = frames, *o = out;
    for (size_t i = 0; i < n; i++) {
        int zstd = lens[i] != 0;
        uint32_t length = zstd ? lens[i] : PAGE;
        memcpy(o, zstd ? dst + stride * i : src + (size_t)PAGE * i, length);
        o += length;
        uint8_t body[INCR_FRAME_ENTRY_MAX], *b = body;
        if (zstd) {
            *b++ = F_CODEC, *b++ = 1;                       /* ZSTD */
            if (level)
                *b++ = F_LEVEL, b = put_varint(b, level);
        }
        if (offset)
            *b++ = F_OFFSET, b = put_varint(b, offset);
        *b++ = F_LENGTH, b = put_varint(b, length);
        *b++ = F_RAW_LENGTH, b = put_varint(b, PAGE);
        *b++ = F_DIGESTS, *b++ = 16;
        memcpy(b, digests + 16 * i, 16), b += 16;
        if (zstd && dict)
            *b++ = F_DICT, b = put_varint(b, dict);
        *f++ = TRAILER_FRAMES, f = put_varint(f, (uint64_t)(b - body));
        memcpy(f, body, (size_t)(b - body)), f += b - body;
        offset += length;
    }
    *stored = (uint64_t)(o - out);
    return (long)(f - frames);
}

/* The spans of whole blocks that fetch_reads reads, in order: [lo, hi) of the pack, each
 * read's frame inside one.  A frame starting in the last block of the previous span, or less
 * than gap bytes past its end, extends it. */
static uint64_t span_end(const struct incr_read *reads, size_t k, size_t end, uint64_t gap, size_t *next)
{
    uint64_t hi = reads[k].offset + reads[k].length;
    for (k++; k < end && reads[k].offset <= (hi + PAGE - 1) / PAGE * PAGE + gap; k++)
        if (reads[k].offset + reads[k].length > hi)
            hi = reads[k].offset + reads[k].length;
    *next = k;
    return (hi + PAGE - 1) / PAGE * PAGE;
}

static long read_span(int fd, uint8_t *dst, uint64_t len, uint64_t lo, int drop, uint64_t *got)
{
    uint64_t done = 0;
    while (done < len) {
        ssize_t r = pread(fd, dst + done, len - done, (off_t)(lo + done));
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 && errno == EINVAL) {         /* no direct reads here: through the page cache */
            int fl = fcntl(fd, F_GETFL);
            if (fl >= 0 && (fl & O_DIRECT) && fcntl(fd, F_SETFL, fl & ~O_DIRECT) == 0)
                continue;
        }
        if (r < 0)
            return -errno;
        if (r == 0)
            break;
        done += (uint64_t)r;
    }
    *got = done;
    if (drop && done) {
        int fl = fcntl(fd, F_GETFL);
        if (fl >= 0 && !(fl & O_DIRECT))
            posix_fadvise(fd, (off_t)lo, (off_t)done, POSIX_FADV_DONTNEED);
    }
    return 0;
}

long incr_fetch_reads(struct incr_read *reads, size_t first, size_t count, int fd, uint8_t *buf,
                      uint64_t cap, uint64_t *used, uint64_t gap, int drop, uint64_t *need, size_t *bad)
{
    size_t end = first + count, next;
    uint64_t want = 0;
    for (size_t k = first; k < end; k = next) {
        uint64_t lo = reads[k].offset / PAGE * PAGE;
        want += span_end(reads, k, end, gap, &next) - lo;
    }
    if (*used > cap || want > cap - *used) {
        *need = want;
        return -1;
    }
    for (size_t k = first; k < end; k = next) {
        uint64_t lo = reads[k].offset / PAGE * PAGE, hi = span_end(reads, k, end, gap, &next), got = 0;
        uint8_t *dst = buf + *used;
        long rc = read_span(fd, dst, hi - lo, lo, drop, &got);
        if (rc < 0) {
            *bad = k;
            return rc;
        }
        for (size_t i = k; i < next; i++) {
            if (reads[i].offset + reads[i].length > lo + got) {
                *bad = i;
                return -2;
            }
            reads[i].at = *used + (reads[i].offset - lo);
        }
        *used += hi - lo;
    }
    return 0;
}

static int fail(struct decode_job *j, size_t k, int code, const char *what)
{
    j->err.read = k;
    j->err.code = code;
    strncpy(j->err.what, what, sizeof j->err.what - 1);
    j->err.what[sizeof j->err.what - 1] = 0;
    return -1;
}

/* Decode one frame into dst (capacity raw_length); 0 or -1 with j->err set. */
static int decode_frame(struct decode_job *j, size_t k, ZSTD_DCtx *dctx, uint8_t *dst)
{
    const struct incr_read *r = &j->reads[k];
    if (r->at > j->sizes[r->group] || r->length > j->sizes[r->group] - r->at)
        return fail(j, k, INCR_DECODE_TRUNCATED, "");
    const uint8_t *src = j->bases[r->group] + r->at;
    j->frames++;
    if (r->codec == INCR_CODEC_RAW) {
        if (r->length != r->raw_length)
            return fail(j, k, INCR_DECODE_LENGTH, "");
        memcpy(dst, src, r->raw_length);
        return 0;
    }
    if (r->codec != INCR_CODEC_ZSTD)
        return fail(j, k, INCR_DECODE_CODEC, "");
    size_t got;
    if (r->dict != UINT32_MAX) {
        if (r->dict >= j->ndicts || j->ddicts[r->dict] == NULL)
            return fail(j, k, INCR_DECODE_DICT, "");
        got = ZSTD_decompress_usingDDict(dctx, dst, r->raw_length, src, r->length, j->ddicts[r->dict]);
    } else {
        got = ZSTD_decompressDCtx(dctx, dst, r->raw_length, src, r->length);
    }
    if (ZSTD_isError(got))
        return fail(j, k, INCR_DECODE_ZSTD, ZSTD_getErrorName(got));
    if (got != r->raw_length)
        return fail(j, k, INCR_DECODE_LENGTH, "");
    return 0;
}

static void *decode_range(void *arg)
{
    struct decode_job *j = arg;
    ZSTD_DCtx *dctx = ZSTD_createDCtx();
    uint8_t *scratch = NULL;        /* a frame of many pages (stores before version 3) */
    size_t scratch_size = 0;
    const struct incr_read *held = NULL;    /* a read of the frame last decoded, */
    const uint8_t *frame = NULL;            /* and that frame's bytes */
    if (dctx == NULL) {
        fail(j, j->first, INCR_DECODE_NOMEM, "");
        return NULL;
    }
    for (size_t k = j->first; k < j->end; k++) {
        const struct incr_read *r = &j->reads[k];
        uint8_t *dst = j->out + (size_t)PAGE * r->page;
        if (r->zero) {
            memset(dst, 0, PAGE);
            continue;
        }
        if ((size_t)r->slot * PAGE + PAGE > r->raw_length) {
            fail(j, k, INCR_DECODE_SLOT, "");
            break;
        }
        if (r->raw_length > MAX_FRAME_RAW) {         /* a damaged entry: no such frame is written */
            fail(j, k, INCR_DECODE_LENGTH, "");
            break;
        }
        /* Sorted reads: those of one frame (its pages, or one page asked for at several
         * addresses) are neighbours, and the frame is decoded once. */
        if (held != NULL && held->group == r->group && held->offset == r->offset) {
            if (held->raw_length != r->raw_length || held->length != r->length || held->codec != r->codec) {
                fail(j, k, INCR_DECODE_LENGTH, "");     /* one frame, two descriptions */
                break;
            }
            memcpy(dst, frame + (size_t)PAGE * r->slot, PAGE);
            continue;
        }
        held = NULL;
        if (r->raw_length == PAGE) {
            if (decode_frame(j, k, dctx, dst) < 0)
                break;
            frame = dst;
        } else {
            if (r->raw_length > scratch_size) {
                free(scratch);
                scratch_size = r->raw_length;
                scratch = malloc(scratch_size);
                if (scratch == NULL) {
                    fail(j, k, INCR_DECODE_NOMEM, "");
                    break;
                }
            }
            if (decode_frame(j, k, dctx, scratch) < 0)
                break;
            frame = scratch;
            memcpy(dst, frame + (size_t)PAGE * r->slot, PAGE);
        }
        held = r;
    }
    free(scratch);
    ZSTD_freeDCtx(dctx);
    return NULL;
}

/* Run fn over jobs[0..threads) (each job_size bytes): jobs 1.. on threads of their own, job 0
 * on the caller's; a job whose thread could not be started runs on the caller's too. */
static void run_jobs(void *(*fn)(void *), void *jobs, size_t job_size, int threads)
{
    pthread_t tids[INCR_DECODE_THREADS];
    int started[INCR_DECODE_THREADS] = {0};
    char *job = jobs;
    for (int t = 1; t < threads; t++)
        started[t] = pthread_create(&tids[t], NULL, fn, job + job_size * (size_t)t) == 0;
    fn(job);
    for (int t = 1; t < threads; t++) {
        if (started[t])
            pthread_join(tids[t], NULL);
        else
            fn(job + job_size * (size_t)t);
    }
}

long incr_decode_reads(const struct incr_read *reads, size_t n, const uint8_t *const *bases,
                       const uint64_t *sizes, void *const *ddicts, size_t ndicts, uint8_t *out,
                       int threads, struct incr_decode_error *err, uint64_t *frames)
{
    struct decode_job jobs[INCR_DECODE_THREADS];
    if (threads < 1)
        threads = 1;
    if (threads > INCR_DECODE_THREADS)
        threads = INCR_DECODE_THREADS;
    if ((size_t)threads > n / 256 + 1)      /* small reads: not worth a thread */
        threads = (int)(n / 256 + 1);
    size_t at = 0;
    for (int t = 0; t < threads; t++) {
        size_t end = t == threads - 1 ? n : n * (size_t)(t + 1) / (size_t)threads;
        if (end < at)
            end = at;
        /* A frame's reads stay in one range: it is decoded once. */
        while (end > at && end < n && reads[end].group == reads[end - 1].group
               && reads[end].offset == reads[end - 1].offset && !reads[end].zero)
            end++;
        jobs[t] = (struct decode_job){ .reads = reads, .first = at, .end = end, .bases = bases, .sizes = sizes,
                                       .ddicts = ddicts, .ndicts = ndicts, .out = out };
        jobs[t].err.read = SIZE_MAX;
        at = end;
    }
    run_jobs(decode_range, jobs, sizeof jobs[0], threads);
    *frames = 0;
    for (int t = 0; t < threads; t++)
        *frames += jobs[t].frames;
    for (int t = 0; t < threads; t++) {
        if (jobs[t].err.read != SIZE_MAX) {
            *err = jobs[t].err;
            return -1;
        }
    }
    return 0;
}

void *incr_ddict_new(const void *data, size_t len)
{
    return ZSTD_createDDict(data, len);
}

void incr_ddict_free(void *ddict)
{
    ZSTD_freeDDict(ddict);
}

/* The write side: pages compressed one frame each (content size and checksum written, no
 * dictionary id: the pack's trailer names the dictionary), on the encoder's threads. */
struct incr_encoder {
    int threads;
    ZSTD_CCtx *cctx[INCR_DECODE_THREADS];
};

void incr_encoder_free(void *p)
{
    struct incr_encoder *e = p;
    if (e == NULL)
        return;
    for (int t = 0; t < e->threads; t++)
        ZSTD_freeCCtx(e->cctx[t]);
    free(e);
}

void *incr_encoder_new(int threads, int level)
{
    if (threads < 1)
        threads = 1;
    if (threads > INCR_DECODE_THREADS)
        threads = INCR_DECODE_THREADS;
    struct incr_encoder *e = calloc(1, sizeof *e);
    if (e == NULL)
        return NULL;
    e->threads = threads;
    for (int t = 0; t < threads; t++) {
        ZSTD_CCtx *c = e->cctx[t] = ZSTD_createCCtx();
        if (c == NULL || ZSTD_isError(ZSTD_CCtx_setParameter(c, ZSTD_c_compressionLevel, level))
            || ZSTD_isError(ZSTD_CCtx_setParameter(c, ZSTD_c_checksumFlag, 1))
            || ZSTD_isError(ZSTD_CCtx_setParameter(c, ZSTD_c_contentSizeFlag, 1))
            || ZSTD_isError(ZSTD_CCtx_setParameter(c, ZSTD_c_dictIDFlag, 0))) {
            incr_encoder_free(e);
            return NULL;
        }
    }
    return e;
}

void *incr_cdict_new(const void *data, size_t len, int level)
{
    return ZSTD_createCDict(data, len, level);
}

void incr_cdict_free(void *cdict)
{
    ZSTD_freeCDict(cdict);
}

struct encode_job {
    ZSTD_CCtx *cctx;
    const ZSTD_CDict *cdict;
    const uint8_t *src;
    size_t first, end, stride;
    double min_ratio;
    uint8_t *dst;
    uint32_t *lens;
    long failed;                    /* -1, or the page zstd refused */
};

static void *encode_range(void *arg)
{
    struct encode_job *j = arg;
    if (ZSTD_isError(ZSTD_CCtx_refCDict(j->cctx, j->cdict))) {
        j->failed = (long)j->first;
        return NULL;
    }
    for (size_t i = j->first; i < j->end; i++) {
        size_t got = ZSTD_compress2(j->cctx, j->dst + j->stride * i, j->stride, j->src + (size_t)PAGE * i, PAGE);
        if (ZSTD_isError(got)) {
            j->failed = (long)i;
            return NULL;
        }
        j->lens[i] = (double)got * j->min_ratio < (double)PAGE ? (uint32_t)got : 0;
    }
    return NULL;
}

long incr_encode_pages(void *encoder, const uint8_t *src, size_t n, const void *cdict, double min_ratio,
                       uint8_t *dst, size_t stride, uint32_t *lens)
{
    struct incr_encoder *e = encoder;
    struct encode_job jobs[INCR_DECODE_THREADS];
    if (stride < ZSTD_compressBound(PAGE))
        return -EINVAL;
    int threads = e->threads;
    if ((size_t)threads > n / 8 + 1)        /* a few pages: not worth a thread */
        threads = (int)(n / 8 + 1);
    for (int t = 0; t < threads; t++)
        jobs[t] = (struct encode_job){ .cctx = e->cctx[t], .cdict = cdict, .src = src, .stride = stride,
                                       .first = n * (size_t)t / (size_t)threads,
                                       .end = n * (size_t)(t + 1) / (size_t)threads,
                                       .min_ratio = min_ratio, .dst = dst, .lens = lens, .failed = -1 };
    run_jobs(encode_range, jobs, sizeof jobs[0], threads);
    for (int t = 0; t < threads; t++)
        if (jobs[t].failed >= 0)
            return -1 - jobs[t].failed;
    return 0;
}
