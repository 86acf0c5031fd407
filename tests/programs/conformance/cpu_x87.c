/* x87 state: control word (rounding up, 64-bit precision), sticky exception flags, and
 * long double values computed under that rounding before and after. */
#include "cf.h"
#include <fenv.h>

static unsigned short fpu_cw(void) { unsigned short cw; __asm__ volatile("fnstcw %0" : "=m"(cw)); return cw; }

int main(int argc, char **argv)
{
    cf_init(argc, argv);
    fesetround(FE_UPWARD);
    feclearexcept(FE_ALL_EXCEPT);
    feraiseexcept(FE_DIVBYZERO | FE_INEXACT);
    volatile long double three = 3.0L;
    long double before = 1.0L / three;
    unsigned short cw = fpu_cw();
    int exc = fetestexcept(FE_ALL_EXCEPT);
    sc_ready();
    sc_wait_go();
    sc_check(fpu_cw() == cw, "x87 control word", "%#x, before %#x", fpu_cw(), cw);
    sc_check(fegetround() == FE_UPWARD, "rounding mode", "%d", fegetround());
    sc_check(fetestexcept(FE_ALL_EXCEPT) == exc, "sticky exception flags", "%#x, before %#x",
             fetestexcept(FE_ALL_EXCEPT), exc);
    long double after = 1.0L / three;
    sc_check(memcmp(&after, &before, 10) == 0, "1/3 rounds the same", "%.25Lg vs %.25Lg", after, before);
    return sc_done();
}
