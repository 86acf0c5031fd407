/* A busy loop (no system calls but a check for GO every 2^16 turns) carrying a 64-bit LCG state:
 * after restore the state must equal the LCG recomputed from scratch for the same turn count. */
#include "cf.h"

static uint64_t step(uint64_t x) { return x * 6364136223846793005ULL + 1442695040888963407ULL; }

int main(int argc, char **argv)
{
    cf_init(argc, argv);
    volatile uint64_t x = 12345;
    uint64_t turns = 0;
    sc_ready();
    for (;;) {
        x = step(x);
        if ((++turns & 0xFFFF) == 0 && access(sc_go_path, F_OK) == 0) break;
    }
    uint64_t y = 12345;
    for (uint64_t i = 0; i < turns; i++) y = step(y);
    sc_check(y == x, "loop state matches a recomputation", "%llu turns: %016llx vs %016llx",
             (unsigned long long)turns, (unsigned long long)x, (unsigned long long)y);
    return sc_done();
}
