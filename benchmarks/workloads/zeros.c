/* zeros: mostly-zero memory, a little of it written.
 *   zeros RUN_DIR SIZE_MIB SEED [PERMILLE_PER_S=2]
 * SIZE_MIB of pages, all touched (resident); every 32nd holds int64 data, the
 * others stay zero.  An iteration reads one page at random; data pages are
 * rewritten at random at PERMILLE_PER_S / 1000 of all pages per second.  The
 * self-check: every zero page still zero, every data page its generation's
 * content. */
#include "wl.h"

int main(int argc, char **argv)
{
    wl_init(argc, argv);
    struct wl_region data = wl_region_new(wl.size_mib * 256, 2, WL_ZEROS, "data", 0);
    wl_fill_region(&data);
    wl_ready();
    wl_run_paced(&data, wl.extra ? atof(wl.extra) : 2.0);
}
