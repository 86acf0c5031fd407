/* hotloop: rewrites EVERY page continuously, the case where pre-copy cannot
 * help (whatever a round copies is dirty again before the freeze).
 *   hotloop RUN_DIR SIZE_MIB SEED
 * SIZE_MIB of HPC-like pages (wl.h's WL_MIXED at generation 0).  An iteration
 * is one pass over all pages writing two words of each: word 1, the pass
 * number, and word 2, a digest of (seed, index, pass).  The self-check: every
 * page's body is its generation-0 content and its two words are this pass's. */
#include "wl.h"

static uint64_t stamp(size_t i, uint64_t pass) { return wl_mix(wl.seed ^ wl_mix(((uint64_t)i << 24) ^ pass)); }

static int verify(const struct wl_region *r, uint64_t pass, char *why, size_t len)
{
    static uint64_t expect[WL_WORDS];
    for (size_t i = 0; i < r->pages; i++) {
        wl_page_content(r, i, 0, expect);
        expect[1] = pass;
        expect[2] = stamp(i, pass);
        if (wl_page_bad(r, i, expect, why, len)) {
            size_t n = strlen(why);
            snprintf(why + n, len - n, " (pass %llu)", (unsigned long long)pass);
            return 1;
        }
    }
    return 0;
}

int main(int argc, char **argv)
{
    wl_init(argc, argv);
    struct wl_region data = wl_region_new(wl.size_mib * 256, 4, WL_MIXED, "data", 0);
    wl_fill_region(&data);
    uint64_t pass = 0;
    for (size_t i = 0; i < data.pages; i++) data.mem[i * WL_WORDS + 2] = stamp(i, pass);
    wl_ready();
    char why[512];
    for (;;) {
        pass++;
        for (size_t i = 0; i < data.pages; i++) {
            uint64_t *p = data.mem + i * WL_WORDS;
            p[1] = pass;
            p[2] = stamp(i, pass);
        }
        wl_set_iterations(pass);
        if (wl_check_wanted()) wl_verdict(verify(&data, pass, why, sizeof why) ? why : NULL);
    }
}
