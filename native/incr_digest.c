/* The page store's page digest, BLAKE3 truncated to 128 bits, of many 4 KiB pages at once.
 *
 * Through the Python binding a page cost 1.2-2.3 us here: one call per page, and a 4 KiB input
 * is only four BLAKE3 chunks, so the binding's 16-lane AVX-512 code ran a quarter full.  Here
 * the chunks of four pages fill sixteen lanes: each lane compresses one chunk, block by block,
 * then the two levels of parents of each page (its four chunks make a balanced tree) are
 * compressed lane-wise too.  The lanes are GCC vector types; the hashing function is compiled
 * for AVX-512, AVX2 and the baseline, the best one picked when the library loads.
 *
 * Written from the BLAKE3 specification (O'Connor, Aumasson, Neves, Wilcox-O'Hearn, 2020:
 * sections 2.2-2.6); tests/test_native_digest.py checks it against the blake3 package. */
#include <stdint.h>
#include <string.h>

#include "incr_native.h"

/* The vector helpers are always inlined into the clones of hash_pass: no vector crosses a call. */
#pragma GCC diagnostic ignored "-Wpsabi"

#define PAGE 4096u
#define CHUNK 1024u
#define BLOCK 64u
#define CHUNKS_PER_PAGE (PAGE / CHUNK)
#define BLOCKS_PER_CHUNK (CHUNK / BLOCK)
#define LANES 16
#define PAGES_PER_PASS (LANES / CHUNKS_PER_PAGE)
#define DIGEST 16u

enum { CHUNK_START = 1, CHUNK_END = 2, PARENT = 4, ROOT = 8 };

typedef uint32_t lanes_t __attribute__((vector_size(LANES * sizeof(uint32_t))));

static const uint32_t IV[8] = {
    0x6A09E667, 0xBB67AE85, 0x3C6EF372, 0xA54FF53A, 0x510E527F, 0x9B05688C, 0x1F83D9AB, 0x5BE0CD19,
};

/* The message words each of the seven rounds reads, in order: the permutation of section 2.2
 * applied once per round. */
static const uint8_t SCHEDULE[7][16] = {
    {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15},
    {2, 6, 3, 10, 7, 0, 4, 13, 1, 11, 12, 5, 9, 14, 15, 8},
    {3, 4, 10, 12, 13, 2, 7, 14, 6, 5, 9, 0, 11, 15, 8, 1},
    {10, 7, 12, 9, 14, 3, 13, 15, 4, 0, 11, 2, 5, 8, 1, 6},
    {12, 13, 9, 11, 15, 10, 14, 8, 7, 2, 5, 3, 0, 1, 6, 4},
    {9, 14, 11, 5, 8, 12, 15, 1, 13, 3, 0, 10, 2, 6, 4, 7},
    {11, 15, 5, 0, 1, 9, 8, 6, 14, 10, 2, 12, 3, 4, 7, 13},
};

static inline __attribute__((always_inline)) lanes_t rotr(lanes_t x, int n)
{
    return (x >> n) | (x << (32 - n));
}

#define G(a, b, c, d, x, y)                                                                        \
    do {                                                                                           \
        v[a] += v[b] + (x);                                                                        \
        v[d] = rotr(v[d] ^ v[a], 16);                                                              \
        v[c] += v[d];                                                                              \
        v[b] = rotr(v[b] ^ v[c], 12);                                                              \
        v[a] += v[b] + (y);                                                                        \
        v[d] = rotr(v[d] ^ v[a], 8);                                                               \
        v[c] += v[d];                                                                              \
        v[b] = rotr(v[b] ^ v[c], 7);                                                               \
    } while (0)

/* One compression of a full 64-byte block in every lane: chaining values `cv` become the next. */
static inline __attribute__((always_inline)) void compress(lanes_t cv[8], const lanes_t m[16],
                                                           lanes_t counter, lanes_t flags)
{
    const lanes_t none = {0};
    lanes_t v[16];
    for (int i = 0; i < 8; i++)
        v[i] = cv[i];
    for (int i = 0; i < 4; i++)
        v[8 + i] = none + IV[i];
    v[12] = counter;
    v[13] = none;
    v[14] = none + BLOCK;
    v[15] = flags;
#pragma GCC unroll 7
    for (int r = 0; r < 7; r++) {
        const uint8_t *s = SCHEDULE[r];
        G(0, 4, 8, 12, m[s[0]], m[s[1]]);
        G(1, 5, 9, 13, m[s[2]], m[s[3]]);
        G(2, 6, 10, 14, m[s[4]], m[s[5]]);
        G(3, 7, 11, 15, m[s[6]], m[s[7]]);
        G(0, 5, 10, 15, m[s[8]], m[s[9]]);
        G(1, 6, 11, 12, m[s[10]], m[s[11]]);
        G(2, 7, 8, 13, m[s[12]], m[s[13]]);
        G(3, 4, 9, 14, m[s[14]], m[s[15]]);
    }
    for (int i = 0; i < 8; i++)
        cv[i] = v[i] ^ v[8 + i];
}

/* Message words of one block per lane, word-major: words[w][lane]. */
typedef uint32_t words_t[16][LANES] __attribute__((aligned(64)));

static inline __attribute__((always_inline)) void load(lanes_t m[16], words_t words)
{
    for (int w = 0; w < 16; w++)
        memcpy(&m[w], words[w], sizeof m[w]);
}

/* The digests of PAGES_PER_PASS pages (a page pointer may repeat: its digest is then written twice). */
__attribute__((target_clones("avx512f", "avx2", "default")))
static void hash_pass(const uint8_t *const page[PAGES_PER_PASS], uint8_t *const out[PAGES_PER_PASS])
{
    const lanes_t none = {0};
    lanes_t cv[8], m[16], counter, flags;
    words_t words;

    /* The chunks: lane l is chunk l % 4 of page l / 4, whose counter is its index in the page. */
    for (int i = 0; i < 8; i++)
        cv[i] = none + IV[i];
    for (int l = 0; l < LANES; l++)
        counter[l] = (uint32_t)(l % CHUNKS_PER_PAGE);
    for (unsigned b = 0; b < BLOCKS_PER_CHUNK; b++) {
        for (int l = 0; l < LANES; l++) {
            const uint8_t *src = page[l / CHUNKS_PER_PAGE] + (l % CHUNKS_PER_PAGE) * CHUNK + b * BLOCK;
            for (int w = 0; w < 16; w++)
                memcpy(&words[w][l], src + 4 * w, 4);   /* little-endian words: x86-64 and arm64 */
        }
        load(m, words);
        flags = none + ((b == 0 ? CHUNK_START : 0) | (b == BLOCKS_PER_CHUNK - 1 ? CHUNK_END : 0));
        compress(cv, m, counter, flags);
    }

    /* The first parents: lane 2p + j joins chunks 2j and 2j + 1 of page p (lanes 8-15 idle). */
    memset(words, 0, sizeof words);
    for (int p = 0; p < PAGES_PER_PASS; p++)
        for (int j = 0; j < 2; j++)
            for (int w = 0; w < 8; w++) {
                words[w][2 * p + j] = cv[w][4 * p + 2 * j];
                words[8 + w][2 * p + j] = cv[w][4 * p + 2 * j + 1];
            }
    load(m, words);
    for (int i = 0; i < 8; i++)
        cv[i] = none + IV[i];
    compress(cv, m, none, none + PARENT);

    /* The root of page p, in lane p: its two parents. */
    memset(words, 0, sizeof words);
    for (int p = 0; p < PAGES_PER_PASS; p++)
        for (int w = 0; w < 8; w++) {
            words[w][p] = cv[w][2 * p];
            words[8 + w][p] = cv[w][2 * p + 1];
        }
    load(m, words);
    for (int i = 0; i < 8; i++)
        cv[i] = none + IV[i];
    compress(cv, m, none, none + (PARENT | ROOT));

    for (int p = 0; p < PAGES_PER_PASS; p++)
        for (unsigned w = 0; w < DIGEST / 4; w++) {
            uint32_t word = cv[w][p];
            memcpy(out[p] + 4 * w, &word, 4);
        }
}

/* The digests of `queued` pages (1 to PAGES_PER_PASS) in one pass: a short pass's free lanes
 * hash its last page again, into the same place. */
static void hash_queued(const uint8_t *page[PAGES_PER_PASS], uint8_t *dst[PAGES_PER_PASS], size_t queued)
{
    for (size_t q = queued; q < PAGES_PER_PASS; q++) {
        page[q] = page[queued - 1];
        dst[q] = dst[queued - 1];
    }
    hash_pass(page, dst);
}

static int all_zero(const uint8_t *page)
{
    static const uint8_t none[PAGE];
    return memcmp(page, none, PAGE) == 0;
}

size_t incr_page_digests(const uint8_t *buf, const uint32_t *index, size_t n, uint8_t *out)
{
    const uint8_t *page[PAGES_PER_PASS];
    uint8_t *dst[PAGES_PER_PASS];
    size_t zeros = 0, queued = 0;

    for (size_t k = 0; k < n; k++) {
        const uint8_t *src = buf + (size_t)PAGE * (index != NULL ? index[k] : k);
        if (all_zero(src)) {
            memset(out + DIGEST * k, 0, DIGEST);
            zeros++;
            continue;
        }
        page[queued] = src;
        dst[queued++] = out + DIGEST * k;
        if (queued == PAGES_PER_PASS) {
            hash_queued(page, dst, queued);
            queued = 0;
        }
    }
    if (queued > 0)
        hash_queued(page, dst, queued);
    return zeros;
}

long incr_check_digests(const uint8_t *buf, const uint32_t *index, size_t n, const uint8_t *want)
{
    static const uint8_t zero[DIGEST];
    uint8_t got[PAGES_PER_PASS * DIGEST];
    const uint8_t *page[PAGES_PER_PASS], *expected[PAGES_PER_PASS];
    uint8_t *dst[PAGES_PER_PASS];
    size_t which[PAGES_PER_PASS];
    size_t queued = 0;

    for (size_t k = 0; k <= n; k++) {
        if (k < n) {
            size_t at = index != NULL ? index[k] : k;
            /* The zero digest names the all-zero page, which is never stored nor read. */
            if (memcmp(want + DIGEST * at, zero, DIGEST) == 0)
                continue;
            page[queued] = buf + (size_t)PAGE * at;
            expected[queued] = want + DIGEST * at;
            dst[queued] = got + DIGEST * queued;
            which[queued++] = k;
            if (queued < PAGES_PER_PASS)
                continue;
        }
        if (queued == 0)
            break;
        hash_queued(page, dst, queued);
        for (size_t q = 0; q < queued; q++)
            if (memcmp(expected[q], got + DIGEST * q, DIGEST) != 0)
                return (long)which[q];
        queued = 0;
    }
    return -1;
}
