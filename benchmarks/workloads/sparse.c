/* sparse: rewrites about 1 % of its pages per second at random places, the
 * pattern where incremental checkpoints pay off most.
 *   sparse RUN_DIR SIZE_MIB SEED [PERMILLE_PER_S=10]
 * SIZE_MIB of HPC-like pages (wl.h's WL_MIXED: smooth float64, noisy float64,
 * int64).  An iteration reads one page at random; the pages due are rewritten
 * between iterations, each with its generation bumped in a table.  The
 * self-check recomputes every page from (seed, index, generation). */
#include "wl.h"

int main(int argc, char **argv)
{
    wl_init(argc, argv);
    struct wl_region data = wl_region_new(wl.size_mib * 256, 1, WL_MIXED, "data", 0);
    wl_fill_region(&data);
    wl_ready();
    wl_run_paced(&data, wl.extra ? atof(wl.extra) : 10.0);
}
