/* openmp: a Jacobi solver on two OpenMP threads, the whole grid every sweep.
 *   openmp RUN_DIR SIZE_MIB SEED
 * Two N x N float64 grids (the state and the previous one) of SIZE_MIB
 * together; the rows of each sweep are shared between 2 threads
 * (schedule(static)); an iteration is a sweep.
 *
 * Self-check: the grid starts as a sum of three discrete eigenmodes of the
 * Laplacian (zero on the border), so that after k sweeps it is, up to
 * rounding, sum_m A_m lambda_m^k S_m[i] T_m[j]; the check compares both
 * grids with that closed form, and the current one with the Jacobi update of
 * the previous one, bit for bit.  A stale, lost or wrong page stays visible
 * after later sweeps have mixed it into its neighbours. */
#include <omp.h>

#include "wl.h"

#define MODES 3

static size_t n;
static double lambda[MODES], amp[MODES], *s_tab[MODES], *t_tab[MODES];

static void sweep(const double *u, double *v)
{
#pragma omp parallel for num_threads(2) schedule(static)
    for (size_t i = 1; i < n - 1; i++)
        for (size_t j = 1; j < n - 1; j++)
            v[i * n + j] = 0.25 * (((u[(i - 1) * n + j] + u[(i + 1) * n + j]) + u[i * n + j - 1]) + u[i * n + j + 1]);
}

/* The grid after K sweeps differs from the closed form by rounding only: a
 * few ulps of the amplitude per sweep (a sweep averages, so errors never grow
 * beyond their sum); the bound allows 1e-15 of the total amplitude per sweep. */
static double tolerance(uint64_t k)
{
    return (amp[0] + amp[1] + amp[2]) * (1e-12 + 1e-15 * (double)k);
}

static int verify_closed_form(const double *g, uint64_t k, const char *which, double *worst, char *why, size_t len)
{
    double tol = tolerance(k), coef[MODES];
    for (size_t i = 0; i < n; i++) {
        for (int m = 0; m < MODES; m++) coef[m] = amp[m] * pow(lambda[m], (double)k) * s_tab[m][i];
        for (size_t j = 0; j < n; j++) {
            double want = coef[0] * t_tab[0][j] + coef[1] * t_tab[1][j] + coef[2] * t_tab[2][j], err = fabs(g[i * n + j] - want);
            if (!(err <= tol)) {
                snprintf(why, len, "%s grid[%zu][%zu] (page %zu) is %.17g, the closed form after %llu sweeps gives %.17g",
                         which, i, j, (i * n + j) * 8 / WL_PAGE, g[i * n + j], (unsigned long long)k, want);
                return 1;
            }
            if (err / tol > *worst) *worst = err / tol;
        }
    }
    return 0;
}

static int verify(const double *prev, const double *cur, uint64_t k, char *why, size_t len)
{
    double worst = 0;
    if (verify_closed_form(cur, k, "current", &worst, why, len) || verify_closed_form(prev, k - 1, "previous", &worst, why, len))
        return 1;
    for (size_t i = 1; i < n - 1; i++)
        for (size_t j = 1; j < n - 1; j++) {
            double want = 0.25 * (((prev[(i - 1) * n + j] + prev[(i + 1) * n + j]) + prev[i * n + j - 1]) + prev[i * n + j + 1]);
            if (cur[i * n + j] != want) {
                snprintf(why, len, "current grid[%zu][%zu] is %.17g, not the update of the previous grid (%.17g), sweep %llu",
                         i, j, cur[i * n + j], want, (unsigned long long)k);
                return 1;
            }
        }
    fprintf(stderr, "openmp: check at sweep %llu: largest error %.3g of the tolerance\n", (unsigned long long)k, worst);
    return 0;
}

int main(int argc, char **argv)
{
    wl_init(argc, argv);
    n = (size_t)sqrt((double)wl.size_mib * 1048576.0 / 16.0);
    if (n < 256) wl_die("SIZE_MIB too small for the solver");
    static const int modes[MODES][2] = {{1, 1}, {2, 3}, {5, 2}};
    for (int m = 0; m < MODES; m++) {
        lambda[m] = 0.5 * (cos(M_PI * modes[m][0] / (double)(n - 1)) + cos(M_PI * modes[m][1] / (double)(n - 1)));
        amp[m] = (m == 0 ? 100.0 : 20.0) * (1.0 + (double)(wl_mix(wl.seed + (uint64_t)m) % 1000) * 1e-3);
        s_tab[m] = calloc(n, sizeof(double));
        t_tab[m] = calloc(n, sizeof(double));
        if (!s_tab[m] || !t_tab[m]) wl_die("out of memory");
        for (size_t i = 1; i < n - 1; i++) {
            s_tab[m][i] = sin(M_PI * modes[m][0] * (double)i / (double)(n - 1));
            t_tab[m][i] = sin(M_PI * modes[m][1] * (double)i / (double)(n - 1));
        }
    }
    double *prev = wl_map(n * n * sizeof(double), 0), *cur = wl_map(n * n * sizeof(double), 0);
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < n; j++)
            prev[i * n + j] = amp[0] * s_tab[0][i] * t_tab[0][j] + amp[1] * s_tab[1][i] * t_tab[1][j] + amp[2] * s_tab[2][i] * t_tab[2][j];
    memset(cur, 0, n * n * sizeof(double));
    sweep(prev, cur);
    uint64_t k = 1;                     /* cur holds the grid after k sweeps, prev after k - 1 */
    wl_set_iterations(k);
    wl_ready();
    char why[512];
    for (;;) {
        double *t = prev;
        prev = cur;
        cur = t;
        sweep(prev, cur);
        wl_set_iterations(++k);
        if (wl_check_wanted()) wl_verdict(verify(prev, cur, k, why, sizeof why) ? why : NULL);
    }
}
