/* Checkpointed 4000 calls deep (about 2 MiB of main-thread stack, each frame with its own data):
 * every frame's data is intact on the way back up. */
#include "cf.h"

static int bottom_reached;

__attribute__((noinline)) static void at_bottom(void)     /* (its buffers stay out of every frame) */
{
    bottom_reached = 1;
    sc_ready();
    sc_wait_go();
}

static int dive(int depth)
{
    volatile uint32_t frame[120];
    for (int i = 0; i < 120; i++) frame[i] = (uint32_t)depth * 2654435761u + (uint32_t)i;
    int bad = 0;
    if (depth == 0) {
        at_bottom();
    } else {
        bad = dive(depth - 1);
    }
    for (int i = 0; i < 120; i++) bad += frame[i] != (uint32_t)depth * 2654435761u + (uint32_t)i;
    return bad;
}

int main(int argc, char **argv)
{
    cf_init(argc, argv);
    int bad = dive(4000);
    sc_check(bottom_reached && bad == 0, "every frame intact", "%d words wrong", bad);
    return sc_done();
}
