/* noisy: incompressible memory (noisy float64: every bit of the mantissa
 * random), 2 % of it rewritten per second at random places.
 *   noisy RUN_DIR SIZE_MIB SEED [PERMILLE_PER_S=20]
 * Like sparse, but no compressor can shrink what is stored: bytes stored and
 * ingest are bound by the raw size. */
#include "wl.h"

int main(int argc, char **argv)
{
    wl_init(argc, argv);
    struct wl_region data = wl_region_new(wl.size_mib * 256, 3, WL_NOISY, "data", 0);
    wl_fill_region(&data);
    wl_ready();
    wl_run_paced(&data, wl.extra ? atof(wl.extra) : 20.0);
}
