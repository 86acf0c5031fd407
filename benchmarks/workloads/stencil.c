/* stencil: a 2-D five-point stencil whose hot window moves, HPC-like (a
 * front, a refined region): each sweep updates the rows of a window of 1/8 of
 * the grid, and the window creeps along, crossing the grid in about a minute.
 *   stencil RUN_DIR SIZE_MIB SEED [ROWS_PER_SWEEP]
 * One N x N float64 grid of SIZE_MIB.
 *
 * Self-check without a copy: the grid starts as a discrete eigenmode of the
 * Laplacian, phi[r][j] = S[r] T[j] (zero on the border), for which the
 * Jacobi update of a row gives lambda * phi exactly.  Each row carries an age
 * (how often it has been updated, in a table); the update scales each
 * neighbouring row by lambda^(age difference), so that row r always holds
 * A lambda^age[r] phi[r] up to rounding:
 *     new[r][j] = (a_up d[r-1][j] + a_down d[r+1][j] + d[r][j-1] + d[r][j+1]) / 4.
 * The check compares every value with that closed form.  A stale, lost or
 * wrong page stays visible even after later sweeps mixed it into its
 * neighbours: the solver cannot repair it, it only spreads it (an iterative
 * solver's state cannot be checked against itself, only against a closed form). */
#include "wl.h"

static size_t n;                        /* the grid is n x n; rows 0 and n-1, columns 0 and n-1 stay zero */
static double *grid, *row, *s_tab, *t_tab, lambda, amp;
static int64_t *age;

static double *at(size_t r) { return grid + r * n; }

static void update_row(size_t r)
{
    double up = pow(lambda, (double)(age[r] - age[r - 1])), down = pow(lambda, (double)(age[r] - age[r + 1]));
    const double *a = at(r - 1), *b = at(r + 1), *c = at(r);
    for (size_t j = 1; j < n - 1; j++) row[j] = 0.25 * (((up * a[j] + down * b[j]) + c[j - 1]) + c[j + 1]);
    memcpy(at(r) + 1, row + 1, (n - 2) * sizeof *row);
    age[r]++;
}

/* Rounding: each update adds a few ulps relative to its row's amplitude; the
 * bound allows 1e-15 per sweep so far, far below what a stale row differs by
 * (amp * (1 - lambda) * phi per update missed, 4.7e-6 of amp at 16 MiB). */
static int verify(uint64_t sweeps, char *why, size_t len)
{
    double rel = 1e-12 + 1e-15 * (double)sweeps, worst = 0;
    for (size_t r = 0; r < n; r++) {
        double scale = amp * pow(lambda, (double)age[r]), tol = scale * rel, e = scale * s_tab[r];
        const double *g = at(r);
        for (size_t j = 0; j < n; j++) {
            double want = e * t_tab[j];
            if (!(fabs(g[j] - want) <= tol)) {
                snprintf(why, len, "grid[%zu][%zu] (page %zu) is %.17g, the closed form gives %.17g (row age %lld, sweep %llu)",
                         r, j, (r * n + j) * 8 / WL_PAGE, g[j], want, (long long)age[r], (unsigned long long)sweeps);
                return 1;
            }
            if (tol > 0 && fabs(g[j] - want) / tol > worst) worst = fabs(g[j] - want) / tol;
        }
    }
    fprintf(stderr, "stencil: check at sweep %llu: largest error %.3g of the tolerance\n", (unsigned long long)sweeps, worst);
    return 0;
}

int main(int argc, char **argv)
{
    wl_init(argc, argv);
    n = (size_t)sqrt((double)wl.size_mib * 1048576.0 / 8.0);
    if (n < 256) wl_die("SIZE_MIB too small for the stencil");
    size_t interior = n - 2, window = n / 8;
    /* A sweep takes ~22 us per MiB of grid here (less when the window fits in the cache): this
     * speed crosses the grid in ~75 s at 1 GiB, ~35 s at 16 MiB.  In sweeps, so that the state
     * after k sweeps does not depend on the machine. */
    double speed = wl.extra ? atof(wl.extra) : (double)n * (double)wl.size_mib * 3e-7;
    int b = 1 + (int)(wl.seed % 3);
    lambda = 0.5 * (cos(M_PI / (double)(n - 1)) + cos(M_PI * b / (double)(n - 1)));
    amp = 50.0 + (double)(wl_mix(wl.seed) % 1000) * 0.1;
    grid = wl_map(n * n * sizeof *grid, 0);
    row = calloc(n, sizeof *row);
    s_tab = calloc(n, sizeof *s_tab);
    t_tab = calloc(n, sizeof *t_tab);
    age = calloc(n, sizeof *age);
    if (!row || !s_tab || !t_tab || !age) wl_die("out of memory");
    for (size_t i = 1; i < n - 1; i++) {
        s_tab[i] = sin(M_PI * (double)i / (double)(n - 1));
        t_tab[i] = sin(M_PI * b * (double)i / (double)(n - 1));
    }
    for (size_t r = 0; r < n; r++)
        for (size_t j = 0; j < n; j++) at(r)[j] = amp * s_tab[r] * t_tab[j];
    wl_ready();

    double start = 0;                   /* the window's first interior row, as a real number */
    uint64_t sweeps = 0;
    char why[512];
    for (;;) {
        size_t first = (size_t)start;
        for (size_t k = 0; k < window; k++) update_row(1 + (first + k) % interior);
        sweeps++;
        start = fmod(start + speed, (double)interior);
        wl_set_iterations(sweeps);
        if (wl_check_wanted()) wl_verdict(verify(sweeps, why, sizeof why) ? why : NULL);
    }
}
