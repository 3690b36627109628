/* Float32 fused multiply-add throughput of this machine, the ceiling of any float32
 * code: the GEMM peak that np.matmul reaches is lower (OpenBLAS packs its operands
 * and stops short of it), so bench_training.py reports both.
 *
 * Build and run (bench_training.py does this when a C compiler is there):
 *     cc -O2 -march=native -ffp-contract=fast -pthread fma_peak.c -o fma_peak
 *     ./fma_peak 2           # threads; prints GFLOP/s
 *
 * Each thread runs 12 independent chains of vector FMAs (enough to cover the latency
 * of two FMA units) on registers, in the widest vectors the compiler targets.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#if defined(__AVX512F__)
#define VBYTES 64
#elif defined(__AVX__) || defined(__ARM_NEON)
#define VBYTES 32 /* NEON: two 128-bit registers per vector */
#else
#define VBYTES 16
#endif
#if defined(__x86_64__) || defined(__i386__)
#define REG "+x"
#elif defined(__aarch64__)
#define REG "+w"
#else
#define REG "+r"
#endif
typedef float vec __attribute__((vector_size(VBYTES)));
#define LANES (VBYTES / 4)
#define ITERS 100000000L

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static void *chains(void *out)
{
    vec b, c, a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11;
    for (int i = 0; i < LANES; i++) {
        b[i] = 0.999999f;
        c[i] = 1e-7f;
    }
    a0 = a1 = a2 = a3 = a4 = a5 = a6 = a7 = a8 = a9 = a10 = a11 = c;
    for (long it = 0; it < ITERS; it++) {
        a0 = a0 * b + c; a1 = a1 * b + c; a2 = a2 * b + c; a3 = a3 * b + c;
        a4 = a4 * b + c; a5 = a5 * b + c; a6 = a6 * b + c; a7 = a7 * b + c;
        a8 = a8 * b + c; a9 = a9 * b + c; a10 = a10 * b + c; a11 = a11 * b + c;
        /* keeps the chains in registers and the loop from being folded away */
        __asm__ volatile("" : REG(a0), REG(a1), REG(a2), REG(a3), REG(a4), REG(a5));
        __asm__ volatile("" : REG(a6), REG(a7), REG(a8), REG(a9), REG(a10), REG(a11));
    }
    vec s = a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7 + a8 + a9 + a10 + a11;
    *(float *)out = s[0];
    return NULL;
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 1;
    if (n < 1 || n > 256) n = 1;
    pthread_t th[256];
    float sink[256];
    double best = 1e30;
    for (int rep = 0; rep < 7; rep++) { /* best of 7: other jobs only slow it down */
        double t0 = now();
        for (int i = 0; i < n; i++) pthread_create(&th[i], NULL, chains, &sink[i]);
        for (int i = 0; i < n; i++) pthread_join(th[i], NULL);
        double dt = now() - t0;
        if (dt < best) best = dt;
    }
    double flops = (double)n * ITERS * 12 * LANES * 2;
    printf("%.1f GFLOP/s (%d threads, %d-bit vectors, checksum %g)\n", flops / best / 1e9, n,
           VBYTES * 8, (double)sink[0]);
    return 0;
}
