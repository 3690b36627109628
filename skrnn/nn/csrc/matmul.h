/* Register-blocked matrix product, included by loops.h once per vector width.
 *
 * Macros from the includer: REAL, FN, ALWAYS_INLINE; MMV (vector bytes), MMR (rows
 * per block), MMFN(name) (the names of this instance), MMATTR (its target
 * attributes).
 *
 * BLAS packs its right operand on every call: with 32 rows that costs half as much as
 * the product itself, and a time loop calls it hundreds of times on the same weights.
 * These kernels read the right operand in place, row by row (its rows run along the
 * output columns, contiguous), and keep an MMR x (2 vectors) block of the result in
 * registers (12 of 16 registers with 256 bits, 16 of 32 with 512), which runs at
 * the machine's FMA peak on these shapes. GCC vector extensions: on an instruction
 * set without vectors that wide, each operation becomes several narrower ones.
 *
 * A is addressed with strides: element (i, k) at A[i * ras + k * cas], so the same
 * kernel does A @ B (ras = lda, cas = 1) and A.T @ B (ras = 1, cas = lda).
 */

#define VL ((long)(MMV / sizeof(REAL)))
#define NR (2 * VL)
typedef REAL MMFN(vec) __attribute__((vector_size(MMV)));
typedef REAL MMFN(vecu) __attribute__((vector_size(MMV), aligned(sizeof(REAL))));

/* C (MMR x NR) = / += A (MMR x K) @ B (K x NR) */
static inline ALWAYS_INLINE void MMFN(mk_block)(long K, const REAL *A, long ras, long cas,
                                                const REAL *B, long ldb, REAL *C, long ldc,
                                                int acc)
{
    MMFN(vec) c[MMR][2];
    for (int r = 0; r < MMR; r++) {
        c[r][0] = (MMFN(vec)){0};
        c[r][1] = (MMFN(vec)){0};
    }
    for (long k = 0; k < K; k++) {
        const REAL *b = B + k * ldb, *a = A + k * cas;
        MMFN(vec) b0 = *(const MMFN(vecu) *)b, b1 = *(const MMFN(vecu) *)(b + VL);
#pragma GCC unroll 8
        for (int r = 0; r < MMR; r++) {
            REAL v = a[r * ras];
            c[r][0] += v * b0;
            c[r][1] += v * b1;
        }
    }
#pragma GCC unroll 8
    for (int r = 0; r < MMR; r++) {
        MMFN(vecu) *p0 = (MMFN(vecu) *)(C + r * ldc), *p1 = (MMFN(vecu) *)(C + r * ldc + VL);
        if (acc) {
            *p0 += c[r][0];
            *p1 += c[r][1];
        } else {
            *p0 = c[r][0];
            *p1 = c[r][1];
        }
    }
}

/* one row: C (1 x NR) = / += A (1 x K) @ B (K x NR) */
static inline ALWAYS_INLINE void MMFN(mk_row)(long K, const REAL *A, long cas, const REAL *B,
                                              long ldb, REAL *C, int acc)
{
    MMFN(vec) c0 = {0}, c1 = {0}, d0 = {0}, d1 = {0};
    long k = 0;
    for (; k + 1 < K; k += 2) { /* two chains: the FMA latency */
        const REAL *b = B + k * ldb;
        REAL a0 = A[k * cas], a1 = A[(k + 1) * cas];
        c0 += a0 * *(const MMFN(vecu) *)b;
        c1 += a0 * *(const MMFN(vecu) *)(b + VL);
        d0 += a1 * *(const MMFN(vecu) *)(b + ldb);
        d1 += a1 * *(const MMFN(vecu) *)(b + ldb + VL);
    }
    for (; k < K; k++) {
        const REAL *b = B + k * ldb;
        REAL a0 = A[k * cas];
        c0 += a0 * *(const MMFN(vecu) *)b;
        c1 += a0 * *(const MMFN(vecu) *)(b + VL);
    }
    c0 += d0;
    c1 += d1;
    MMFN(vecu) *p0 = (MMFN(vecu) *)C, *p1 = (MMFN(vecu) *)(C + VL);
    if (acc) {
        *p0 += c0;
        *p1 += c1;
    } else {
        *p0 = c0;
        *p1 = c1;
    }
}

/* C (M x N) = / += op(A) (M x K) @ B (K x N), B and C row-major. Columns beyond the
 * last full panel go through a zero-padded copy of the panel. */
static MMATTR void MMFN(mm_own)(long M, long N, long K, const REAL *A, long ras, long cas,
                                const REAL *B, long ldb, REAL *C, long ldc, int acc)
{
    long Mf = M - M % MMR, Nf = N - N % NR;
    for (long j0 = 0; j0 < Nf; j0 += NR) {
        for (long i0 = 0; i0 < Mf; i0 += MMR)
            MMFN(mk_block)(K, A + i0 * ras, ras, cas, B + j0, ldb, C + i0 * ldc + j0, ldc, acc);
        for (long i = Mf; i < M; i++)
            MMFN(mk_row)(K, A + i * ras, cas, B + j0, ldb, C + i * ldc + j0, acc);
    }
    if (Nf < N) {
        long nr = N - Nf;
        REAL cb[MMR * NR];
        REAL stack_panel[1024];
        REAL *panel = K * NR <= 1024 ? stack_panel : malloc(sizeof(REAL) * (size_t)(K * NR));
        if (!panel) { /* out of memory: plain loops */
            for (long i = 0; i < M; i++)
                for (long j = Nf; j < N; j++) {
                    REAL v = 0;
                    for (long k = 0; k < K; k++) v += A[i * ras + k * cas] * B[k * ldb + j];
                    C[i * ldc + j] = acc ? C[i * ldc + j] + v : v;
                }
            return;
        }
        for (long k = 0; k < K; k++)
            for (long j = 0; j < NR; j++) panel[k * NR + j] = j < nr ? B[k * ldb + Nf + j] : 0;
        for (long i0 = 0; i0 < M; i0 += MMR) {
            long mr = M - i0 < MMR ? M - i0 : MMR;
            if (mr == MMR)
                MMFN(mk_block)(K, A + i0 * ras, ras, cas, panel, NR, cb, NR, 0);
            else
                for (long r = 0; r < mr; r++)
                    MMFN(mk_row)(K, A + (i0 + r) * ras, cas, panel, NR, cb + r * NR, 0);
            for (long r = 0; r < mr; r++)
                for (long j = 0; j < nr; j++) {
                    REAL *c = C + (i0 + r) * ldc + Nf + j;
                    *c = acc ? *c + cb[r * NR + j] : cb[r * NR + j];
                }
        }
        if (panel != stack_panel) free(panel);
    }
}

#undef VL
#undef NR
