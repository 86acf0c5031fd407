/* SSE control: MXCSR with flush-to-zero, denormals-are-zero and round-toward-zero; a denormal
 * operand must still read as zero after restore. */
#include "cf.h"
#include <float.h>

static unsigned get_mxcsr(void) { unsigned m; __asm__ volatile("stmxcsr %0" : "=m"(m)); return m; }
static void set_mxcsr(unsigned m) { __asm__ volatile("ldmxcsr %0" : : "m"(m)); }

int main(int argc, char **argv)
{
    cf_init(argc, argv);
    set_mxcsr((get_mxcsr() & ~0x6000u) | 0x8000u | 0x0040u | 0x6000u);   /* FTZ, DAZ, RZ */
    unsigned before = get_mxcsr();
    volatile float denormal = FLT_MIN / 4.0f;
    sc_ready();
    sc_wait_go();
    sc_check(get_mxcsr() == before, "MXCSR", "%#x, before %#x", get_mxcsr(), before);
    volatile float sum = denormal + 0.0f;
    sc_check(sum == 0.0f, "denormals read as zero", "%g", sum);
    volatile float one = 1.0f, three = 3.0f;
    volatile float third = one / three;
    sc_check(third == 0x1.555554p-2f, "1/3 rounds toward zero", "%a", third);
    return sc_done();
}
