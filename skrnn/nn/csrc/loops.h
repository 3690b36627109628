/* Time loops of the recurrent layers, for one floating-point type.
 *
 * Included twice by fastrnn.c, with REAL = float and REAL = double; every name goes
 * through FN() so the two copies do not clash.
 *
 * Layouts are those of the NumPy engine (skrnn/nn/_cells.py), C-contiguous and
 * time-major: X (T, B, F), states (T+1, B, H), gates (T, B, G) with G = gates * H and
 * the gate blocks side by side (LSTM i, f, o, g; GRU r, z, n), sigmoid blocks of the
 * forward weights pre-halved (sigmoid(a) = 0.5 + 0.5 tanh(a / 2)).
 *
 * A call handles the rows [b0, b1) of the batch (one block), from the first step to
 * the last: the sequences of a batch are independent, so threads split the batch
 * and never wait for each other inside the time loop. Per step: the input side, one
 * (two for the Cho GRU) product with the recurrent weights and one fused pass over
 * the gates. The backward pass also sums the weight gradients as it goes (bias and
 * W_ih in the gate pass when there is one input feature, W_hh every few steps)
 * into the block's partial sums, which the caller adds up in block order.
 */

/* ---- activations ------------------------------------------------------------ */

#if TANH_RATIONAL
/* float: tanh(x) = x P(x^2) / Q(x^2), the minimax rational function of Eigen's
 * generic_fast_tanh_float (degree 13 over 6, x clamped to +-7.9 where tanh rounds
 * to 1): within 6 ulp, and half the work of the expm1 form below. Computed as
 * x * (P / Q), so tiny and denormal x need no branch of their own: x^2 underflows
 * to 0, P / Q rounds to 1 - 2^-23 and the result is x within 1 ulp, with the sign
 * of zero kept. Branch-free; NaN propagates. */
static inline ALWAYS_INLINE REAL FN(tanh_)(REAL x)
{
    REAL c = x > 7.90531110763549805f ? 7.90531110763549805f : x;
    c = c < -7.90531110763549805f ? -7.90531110763549805f : c;
    REAL x2 = c * c;
    REAL p = -2.76076847742355e-16f;
    p = p * x2 + 2.00018790482477e-13f;
    p = p * x2 + -8.60467152213735e-11f;
    p = p * x2 + 5.12229709037114e-08f;
    p = p * x2 + 1.48572235717979e-05f;
    p = p * x2 + 6.37261928875436e-04f;
    p = p * x2 + 4.89352455891786e-03f;
    REAL q = 1.19825839466702e-06f;
    q = q * x2 + 1.18534705686654e-04f;
    q = q * x2 + 2.26843463243900e-03f;
    q = q * x2 + 4.89352518554385e-03f;
    return c * (p / q);
}
#else
/* tanh through expm1 (accurate near 0): tanh|x| = -e / (2 + e), e = expm1(-2|x|).
 * Branch-free, no libm call, so the loops using it vectorize. NaN propagates (the
 * comparisons are false for NaN); within 3 ulp of the correctly rounded tanh. */
static inline ALWAYS_INLINE REAL FN(tanh_)(REAL x)
{
    REAL ax = x < 0 ? -x : x;
    REAL u = 2 * ax;
    u = u > TANH_CLAMP ? TANH_CLAMP : u;
    REAL y = -u;
    REAL kd = y * (REAL)1.4426950408889634074 + EXP_SHIFT;
    UINT ki;
    memcpy(&ki, &kd, sizeof ki);
    kd -= EXP_SHIFT;
    REAL r = y - kd * LN2_HI;
    r = r - kd * LN2_LO;
    REAL p = r + r * r * EXPM1_POLY(r);
    UINT sb = (ki + EXP_BIAS) << MANT_BITS;
    REAL s;
    memcpy(&s, &sb, sizeof s);
    REAL em = s * p + (s - 1);
    REAL t = em / (2 + em);
    t = t < 0 ? -t : t;
    t = x < 0 ? -t : t;
    return x == 0 ? x : t; /* keeps the sign of zero */
}

#endif

#define SIG_(a) ((REAL)0.5 + (REAL)0.5 * FN(tanh_)(a)) /* a is already halved */

/* ---- matrix products ------------------------------------------------------------ */

/* Register-blocked products for the per-step shapes (see matmul.h): a 256-bit
 * version for every machine and, on x86-64 with AVX-512, a 512-bit one. */
#define MMV 32
#define MMR 6
#define MMFN(name) FN(name##_256)
#define MMATTR ATTR
#include "matmul.h"
#undef MMV
#undef MMR
#undef MMFN
#undef MMATTR
#if FASTRNN_AVX512
#define MMV 64
#define MMR 8
#define MMFN(name) FN(name##_512)
#define MMATTR __attribute__((target("arch=x86-64-v4")))
#include "matmul.h"
#undef MMV
#undef MMR
#undef MMFN
#undef MMATTR
#endif

static inline void FN(mm_own)(long M, long N, long K, const REAL *A, long ras, long cas,
                              const REAL *B, long ldb, REAL *C, long ldc, int acc)
{
#if FASTRNN_AVX512
    /* 512-bit panels when the columns fill them; otherwise 256-bit ones, half as
     * wide, rather than the padded copy of a last partial panel */
    if (have_avx512 && N % (long)(128 / sizeof(REAL)) == 0) {
        FN(mm_own_512)(M, N, K, A, ras, cas, B, ldb, C, ldc, acc);
        return;
    }
#endif
    FN(mm_own_256)(M, N, K, A, ras, cas, B, ldb, C, ldc, acc);
}

/* C (M x N) = op(A) (M x K) @ B (K x N) + beta * C, all row-major; ta is 'N' or 'T'
 * (op(A) = A.T: A is stored K x M); beta is 0 or 1. */
static inline void FN(mm)(char ta, long M, long N, long K, const REAL *A, long lda,
                          const REAL *B, long ldb, REAL beta, REAL *C, long ldc)
{
    if (M <= 0 || N <= 0) return;
    if (K <= 0) {
        if (beta == 0)
            for (long i = 0; i < M; i++) memset(C + i * ldc, 0, sizeof(REAL) * N);
        return;
    }
    FN(mm_own)(M, N, K, A, ta == 'N' ? lda : 1, ta == 'N' ? 1 : lda, B, ldb, C, ldc, beta != 0);
}

/* ---- shared pieces ------------------------------------------------------------------ */

/* Argument block, one per call; the pointers are REAL * of the call's dtype. */
#define P(name) ((REAL *)a->name)
/* The block's rows (nb x H) of the state after step t (t = 0: the initial state): in
 * Hs (T+1, B, H), or, in a forward pass whose output sequence nobody needs (the top
 * layer under a last-step head: predict), in two alternating slots of the block's
 * scratch (`ring`), which keeps the working set in cache and spares the caller
 * B x H x 2 of fresh memory; the last state is then copied into Hs (B, H). */
#define HSB(t) (a->hs_ring ? ring + ((t) & 1) * nb * H : P(Hs) + (t) * BH + b0 * H)

/* The inner dimension of a product with the state before step t (or with the
 * gradient of that state): the initial state is zero (Hs[0] = 0, the ring's first
 * slot zeroed), so at t = 0 these products are zero, and nobody uses the gradient of
 * the initial state. K = 0 skips them: mm zeroes C, or leaves it as it is when
 * accumulating. That is 1/T of all recurrent products (7% at T = 14). */
#define KREC(t, k) ((t) > 0 ? (k) : 0)

/* the ring's slots from scratch (cur advances), the initial state zeroed; NULL when
 * the states go to Hs */
static inline REAL *FN(ring_init)(const Args *a, long nb, REAL **cur)
{
    if (!a->hs_ring) return NULL;
    REAL *ring = *cur;
    *cur += 2 * nb * a->H;
    memset(ring, 0, sizeof(REAL) * nb * a->H);
    return ring;
}

/* after the last step: the block's last state out of the ring, into Hs (B, H) */
static inline void FN(ring_out)(const Args *a, const REAL *last, long b0, long nb)
{
    if (a->hs_ring) memcpy(P(Hs) + b0 * a->H, last, sizeof(REAL) * nb * a->H);
}

/* the block's rows h (nb x H) times the mask rows, into out; h itself without mask */
static inline const REAL *FN(masked)(const Args *a, const REAL *h, REAL *out, long b0,
                                     long nb)
{
    if (!a->mask) return h;
    const REAL *m = P(mask) + b0 * a->H;
    for (long i = 0; i < nb * a->H; i++) out[i] = h[i] * m[i];
    return out;
}

/* The input side of a step, x_t W_ih + b. With one feature per step (F == 1, the
 * usual univariate series) it is added inside the gate pass: per row, the scalar
 * x and the vectors W_ih[0] and b (no extra pass over the gates, and the backward
 * pass sums the gradients of b and W_ih in its gate pass too). Otherwise it is a
 * product of its own, written into the gates before the recurrent product is
 * added, and the gate passes see x = 0 with zero vectors. */
typedef struct {
    int fused;
    const REAL *w, *b; /* (G,): W_ih[0] and b, or zeros */
    const REAL *x;     /* X rows of the block at step t (F == 1), or NULL */
} FN(In);

static inline FN(In) FN(input_side)(const Args *a, long t, long b0)
{
    FN(In) in;
    in.fused = a->F == 1;
    in.w = in.fused ? P(Wih) : P(zeros);
    in.b = in.fused ? P(b) : P(zeros);
    in.x = in.fused ? P(X) + t * a->B + b0 : NULL;
    return in;
}

#define XV(in, r) ((in).x ? (in).x[r] : (REAL)0)

/* out (nb x G, ld ldo) = x (nb x F) @ W (F x G) + b, when not fused */
static inline void FN(project)(const Args *a, long t, long b0, long nb, REAL *out, long ldo)
{
    long F = a->F, G = a->G;
    const REAL *x = P(X) + (t * a->B + b0) * F, *W = P(Wih), *b = P(b);
    if (F <= 8) {
        for (long r = 0; r < nb; r++) {
            REAL *o = out + r * ldo;
            const REAL *xr = x + r * F;
            memcpy(o, b, sizeof(REAL) * G);
            for (long f = 0; f < F; f++) {
                REAL v = xr[f];
                const REAL *w = W + f * G;
                for (long j = 0; j < G; j++) o[j] += v * w[j];
            }
        }
    } else {
        for (long r = 0; r < nb; r++) memcpy(out + r * ldo, b, sizeof(REAL) * G);
        FN(mm)('N', nb, G, F, x, F, W, G, 1, out, ldo);
    }
}

/* gW (F x k, ld ldw) += x (nb x F).T @ d (nb x k, ld ldd), when not fused (the bias
 * gradient is always summed in the gate passes) */
static inline void FN(acc_wih)(const Args *a, long t, long b0, long nb, long k,
                               const REAL *d, long ldd, REAL *gW)
{
    long F = a->F, G = a->G;
    const REAL *x = P(X) + (t * a->B + b0) * F;
    if (F <= 8) {
        for (long r = 0; r < nb; r++) {
            const REAL *dr = d + r * ldd, *xr = x + r * F;
            for (long f = 0; f < F; f++) {
                REAL v = xr[f];
                REAL *g = gW + f * G;
                for (long j = 0; j < k; j++) g[j] += v * dr[j];
            }
        }
    } else {
        FN(mm)('T', F, k, nb, x, F, d, ldd, 1, gW, G);
    }
}

/* seed the state gradient of step t (head or next layer) into dh (nb x H) */
static inline void FN(seed)(const Args *a, long t, long b0, long nb, REAL *dh)
{
    long H = a->H, o = (t * a->B + b0) * H;
    if (a->dH) {
        const REAL *s = P(dH) + o;
        for (long i = 0; i < nb * H; i++) dh[i] += s[i];
    } else if (a->dlast && t == a->T - 1) {
        const REAL *s = P(dlast) + b0 * H;
        for (long i = 0; i < nb * H; i++) dh[i] += s[i];
    }
}

/* The gradient of W_hh is a sum over steps of h_prev.T @ d. A block has few rows
 * (16 or so), so a product per step would have a thin inner dimension and rewrite the
 * whole gradient matrix every step; instead the rows of up to `span` steps (h_prev
 * in hb, d in db) are gathered and multiplied at once. */
typedef struct {
    long span, used, nb;
    REAL *hb, *db; /* span * nb rows of H and of G */
} FN(Defer);

static inline FN(Defer) FN(defer_init)(const Args *a, long nb, REAL **cur)
{
    FN(Defer) q;
    q.span = a->span;
    q.used = 0;
    q.nb = nb;
    q.hb = *cur;
    *cur += a->span * nb * a->H;
    q.db = *cur;
    *cur += a->span * nb * a->G;
    return q;
}

/* where this step's h_prev (masked) rows and gate gradients go */
static inline REAL *FN(defer_h)(FN(Defer) *q, long H) { return q->hb + q->used * q->nb * H; }
static inline REAL *FN(defer_d)(FN(Defer) *q, long G) { return q->db + q->used * q->nb * G; }

/* this step's rows are in; multiply when the span is full or at the first step:
 * gW (H x k, ld ldw) += hb.T @ db[:, :k] (the first step's rows hold the zero initial
 * state: left out) */
static inline void FN(defer_push)(FN(Defer) *q, long t, long H, long G, long k, REAL *gW,
                                  long ldw)
{
    q->used++;
    if (q->used == q->span || t == 0) {
        long steps = t == 0 ? q->used - 1 : q->used;
        FN(mm)('T', H, k, steps * q->nb, q->hb, H, q->db, G, 1, gW, ldw);
        q->used = 0;
    }
}

/* h_prev rows of step t (times the recurrent mask) into dst */
static inline void FN(copy_hm)(const Args *a, long t, long b0, long nb, REAL *dst)
{
    long H = a->H;
    const REAL *h = P(Hs) + (t * a->B + b0) * H;
    if (a->mask) {
        const REAL *m = P(mask) + b0 * H;
        for (long i = 0; i < nb * H; i++) dst[i] = h[i] * m[i];
    } else {
        memcpy(dst, h, sizeof(REAL) * nb * H);
    }
}

/* after the step's gate gradients d (nb x G): W_ih's gradient (when not fused) and
 * the gradient of the layer input (when asked) */
static inline void FN(input_grads)(const Args *a, const Grads *g, long t, long b0, long nb,
                                   const REAL *d)
{
    long F = a->F, G = a->G;
    if (F != 1) FN(acc_wih)(a, t, b0, nb, G, d, G, (REAL *)g->Wih);
    if (a->dX) FN(mm)('N', nb, F, G, d, G, P(WihT), F, 0, P(dX) + (t * a->B + b0) * F, F);
}

static inline void FN(mask_rows)(const Args *a, long b0, long nb, REAL *dh)
{
    if (a->mask) {
        const REAL *m = P(mask) + b0 * a->H;
        for (long i = 0; i < nb * a->H; i++) dh[i] *= m[i];
    }
}

/* where the gate passes sum W_ih's gradient: the real one (fused) or a dummy */
static inline REAL *FN(gwih_target)(const Args *a, const Grads *g, REAL *dummy)
{
    return a->F == 1 ? (REAL *)g->Wih : dummy;
}

/* The end of a backward step once its gate gradients d (nb x G) are known, for the
 * cells with a single recurrent product (SimpleRNN, LSTM): defer h_prev's rows for
 * W_hh's gradient, the input-side gradients, dh = d @ W_hh.T (masked) for the step
 * before. */
static inline void FN(bwd_step_end)(const Args *a, const Grads *g, FN(Defer) *q, long t,
                                    long b0, long nb, const REAL *d, REAL *dh)
{
    long H = a->H, G = a->G;
    FN(copy_hm)(a, t, b0, nb, FN(defer_h)(q, H));
    FN(input_grads)(a, g, t, b0, nb, d);
    FN(mm)('N', nb, H, KREC(t, G), d, G, P(WhhT), H, 0, dh, H);
    FN(defer_push)(q, t, H, G, G, (REAL *)g->Whh, G);
    FN(mask_rows)(a, b0, nb, dh);
}

/* Backward passes read the activations a forward pass stored, one step at a time and
 * backwards: a block's rows of a step are short runs spread over megabytes, too
 * short for the hardware prefetcher to lock onto before the pass jumps to the step
 * before. While a step's rows are processed, each row of the step before is asked
 * for ahead (into L2), so it has a whole step's products to arrive. */
static inline ALWAYS_INLINE void FN(prefetch)(const REAL *p, long n)
{
#if defined(__GNUC__)
    const char *c = (const char *)p, *end = (const char *)(p + n);
    for (; c < end; c += 64) __builtin_prefetch(c, 0, 2);
#else
    (void)p;
    (void)n;
#endif
}

/* the same for rows a training forward pass is about to write (the gates, states
 * and cell states of the next step: fresh lines for every step) */
static inline ALWAYS_INLINE void FN(prefetch_w)(REAL *p, long n)
{
#if defined(__GNUC__)
    char *c = (char *)p, *end = (char *)(p + n);
    for (; c < end; c += 64) __builtin_prefetch(c, 1, 2);
#else
    (void)p;
    (void)n;
#endif
}

/* ---- SimpleRNN ---------------------------------------------------------------- */

static inline ALWAYS_INLINE void FN(rnn_fwd_row)(long H, REAL *restrict hn, REAL xv,
                                                 const REAL *restrict wi,
                                                 const REAL *restrict bi, int relu)
{
    if (relu) {
        for (long j = 0; j < H; j++) {
            REAL v = hn[j] + (bi[j] + xv * wi[j]);
            hn[j] = v < 0 ? 0 : v;
        }
    } else {
        for (long j = 0; j < H; j++) hn[j] = FN(tanh_)(hn[j] + (bi[j] + xv * wi[j]));
    }
}

/* scratch per row: H, and 2H for the ring */
static ATTR void FN(rnn_fwd)(const Args *a, long b0, long b1, char *scratch, const Grads *g)
{
    long T = a->T, B = a->B, H = a->H, nb = b1 - b0, BH = B * H;
    REAL *cur = (REAL *)scratch, *hmbuf = cur;
    cur += nb * H;
    REAL *ring = FN(ring_init)(a, nb, &cur);
    (void)g;
    for (long t = 0; t < T; t++) {
        FN(In) in = FN(input_side)(a, t, b0);
        const REAL *hm = FN(masked)(a, HSB(t), hmbuf, b0, nb);
        REAL *hn = HSB(t + 1);
        if (!in.fused) FN(project)(a, t, b0, nb, hn, H);
        FN(mm)('N', nb, H, KREC(t, H), hm, H, P(Whh), H, in.fused ? 0 : 1, hn, H);
        for (long r = 0; r < nb; r++)
            FN(rnn_fwd_row)(H, hn + r * H, XV(in, r), in.w, in.b, a->relu);
    }
    FN(ring_out)(a, HSB(T), b0, nb);
}

static inline ALWAYS_INLINE void FN(rnn_bwd_row)(long H, const REAL *restrict h,
                                                 const REAL *restrict dh, REAL *restrict d,
                                                 REAL xv, REAL *restrict gb,
                                                 REAL *restrict gw, int relu)
{
    if (relu) {
        for (long j = 0; j < H; j++) {
            REAL v = h[j] > 0 ? dh[j] : 0;
            d[j] = v; gb[j] += v; gw[j] += xv * v;
        }
    } else {
        for (long j = 0; j < H; j++) {
            REAL v = (1 - h[j] * h[j]) * dh[j];
            d[j] = v; gb[j] += v; gw[j] += xv * v;
        }
    }
}

/* scratch per row: H + span * (H + G); plus G (dummy) */
static ATTR void FN(rnn_bwd)(const Args *a, long b0, long b1, char *scratch, const Grads *g)
{
    long T = a->T, B = a->B, H = a->H, G = H, nb = b1 - b0, BH = B * H;
    REAL *cur = (REAL *)scratch, *dh = cur;
    cur += nb * H;
    FN(Defer) q = FN(defer_init)(a, nb, &cur);
    REAL *dummy = cur;
    REAL *gb = (REAL *)g->b, *gw = FN(gwih_target)(a, g, dummy);
    memset(dh, 0, sizeof(REAL) * nb * H);
    for (long t = T - 1; t >= 0; t--) {
        FN(In) in = FN(input_side)(a, t, b0);
        const REAL *h = P(Hs) + (t + 1) * BH + b0 * H;
        REAL *d = FN(defer_d)(&q, G);
        FN(seed)(a, t, b0, nb, dh);
        for (long r = 0; r < nb; r++)
            FN(rnn_bwd_row)(H, h + r * H, dh + r * H, d + r * H, XV(in, r), gb, gw, a->relu);
        FN(bwd_step_end)(a, g, &q, t, b0, nb, d, dh);
    }
}

/* ---- LSTM ------------------------------------------------------------------------ */

#if X16_REAL
#include "gates_avx512.h"
#endif

/* One sequence's step with peepholes: the activations, c, tanh(c) and h (o sees c,
 * so all of it runs in one pass). (restrict: the blocks never overlap, and gcc needs
 * to know it to vectorize.) */
static inline ALWAYS_INLINE void FN(lstm_fwd_peep_row)(
    long H, REAL *restrict ai, REAL *restrict af, REAL *restrict ao, REAL *restrict ag,
    const REAL *restrict cp, REAL *restrict cn, REAL *restrict tc, REAL *restrict hn,
    const REAL *restrict p0, const REAL *restrict p1, const REAL *restrict p2, REAL xv,
    const REAL *restrict wi, const REAL *restrict wf, const REAL *restrict wo,
    const REAL *restrict wg, const REAL *restrict bi, const REAL *restrict bf,
    const REAL *restrict bo, const REAL *restrict bg)
{
    for (long j = 0; j < H; j++) {
        REAL c_prev = cp[j];
        REAL i = SIG_(ai[j] + (bi[j] + xv * wi[j]) + p0[j] * c_prev);
        REAL f = SIG_(af[j] + (bf[j] + xv * wf[j]) + p1[j] * c_prev);
        REAL g = FN(tanh_)(ag[j] + (bg[j] + xv * wg[j]));
        REAL c = f * c_prev + i * g;
        REAL o = SIG_(ao[j] + (bo[j] + xv * wo[j]) + p2[j] * c);
        REAL th = FN(tanh_)(c);
        ai[j] = i; af[j] = f; ao[j] = o; ag[j] = g;
        cn[j] = c; tc[j] = th; hn[j] = o * th;
    }
}

/* Without peepholes, a step runs in two passes: per sequence, the gates and c (o is
 * copied to ob, contiguous over the block); then one flat pass over the whole block
 * for tanh(c) and h, whose elements are independent and carry no per-row overhead,
 * so the out-of-order core overlaps their tanh chains (predict with H=16: ~10% less
 * time, benchmarks/ab_builds.py). */
static inline ALWAYS_INLINE void FN(lstm_gates_row)(
    long H, REAL *restrict ai, REAL *restrict af, REAL *restrict ao, REAL *restrict ag,
    const REAL *restrict cp, REAL *restrict cn, REAL *restrict ob, REAL xv,
    const REAL *restrict wi, const REAL *restrict wf, const REAL *restrict wo,
    const REAL *restrict wg, const REAL *restrict bi, const REAL *restrict bf,
    const REAL *restrict bo, const REAL *restrict bg)
{
    for (long j = 0; j < H; j++) {
        REAL i = SIG_(ai[j] + (bi[j] + xv * wi[j]));
        REAL f = SIG_(af[j] + (bf[j] + xv * wf[j]));
        REAL o = SIG_(ao[j] + (bo[j] + xv * wo[j]));
        REAL g = FN(tanh_)(ag[j] + (bg[j] + xv * wg[j]));
        ai[j] = i; af[j] = f; ao[j] = o; ag[j] = g;
        ob[j] = o;
        cn[j] = f * cp[j] + i * g;
    }
}

static inline void FN(lstm_out_block)(long n, const REAL *restrict cn,
                                      const REAL *restrict ob, REAL *restrict tc,
                                      REAL *restrict hn)
{
    for (long k = 0; k < n; k++) {
        REAL th = FN(tanh_)(cn[k]);
        tc[k] = th;
        hn[k] = ob[k] * th;
    }
}

/* store: gates into Gt (T, B, 4H), tanh(c) into TC (T, B, H), c into Cs (T+1, B, H);
 * else the gates of a step, tanh(c) and two steps of c stay in the block's scratch.
 * scratch per row: 6H, and 3H without store, and 2H for the ring */
static ATTR void FN(lstm_fwd)(const Args *a, long b0, long b1, char *scratch, const Grads *g)
{
    long T = a->T, B = a->B, H = a->H, G = 4 * H, nb = b1 - b0, BH = B * H;
    REAL *cur = (REAL *)scratch, *hmbuf = cur, *step = hmbuf + nb * H, *ob = step + nb * G;
    cur = ob + nb * H;
    REAL *cring = NULL, *tcb = NULL;
    if (!a->store) {
        cring = cur;
        tcb = cring + 2 * nb * H;
        cur = tcb + nb * H;
        memset(cring, 0, sizeof(REAL) * nb * H);
    }
    REAL *ring = FN(ring_init)(a, nb, &cur);
    (void)g;
/* the block's rows of c after step t, and of tanh(c) at step t */
#define CSB(t) (a->store ? P(Cs) + (t) * BH + b0 * H : cring + ((t) & 1) * nb * H)
#define TCB(t) (a->store ? P(TC) + (t) * BH + b0 * H : tcb)
    for (long t = 0; t < T; t++) {
        FN(In) in = FN(input_side)(a, t, b0);
        REAL *ga = a->store ? P(Gt) + (t * B + b0) * G : step;
        if (!in.fused) FN(project)(a, t, b0, nb, ga, G);
        const REAL *hm = FN(masked)(a, HSB(t), hmbuf, b0, nb);
        FN(mm)('N', nb, G, KREC(t, H), hm, H, P(Whh), G, in.fused ? 0 : 1, ga, G);
        REAL *cp = CSB(t), *cn = CSB(t + 1), *tc = TCB(t), *hn = HSB(t + 1);
        if (!P(peep)) {
            const REAL *w = in.w, *bb = in.b;
#if X16_REAL
            if (have_avx512 && H % 16 == 0) {
                x16_lstm_step(a, t, b0, nb, ga, cp, cn, ob, tc, hn, in.x, w, bb);
                continue;
            }
#endif
            for (long r = 0; r < nb; r++) {
                REAL *gr = ga + r * G;
                if (a->store && t + 1 < T) {
                    long o = (b0 + r) * H;
                    FN(prefetch_w)(gr + B * G, G);
                    FN(prefetch_w)(P(Cs) + (t + 2) * BH + o, H);
                    FN(prefetch_w)(P(TC) + (t + 1) * BH + o, H);
                    FN(prefetch_w)(P(Hs) + (t + 2) * BH + o, H);
                }
                FN(lstm_gates_row)(H, gr, gr + H, gr + 2 * H, gr + 3 * H, cp + r * H,
                                   cn + r * H, ob + r * H, XV(in, r), w, w + H, w + 2 * H,
                                   w + 3 * H, bb, bb + H, bb + 2 * H, bb + 3 * H);
            }
            FN(lstm_out_block)(nb * H, cn, ob, tc, hn);
            continue;
        }
        for (long r = 0; r < nb; r++) {
            REAL *gr = ga + r * G;
            const REAL *pp = P(peep), *w = in.w, *bb = in.b;
            FN(lstm_fwd_peep_row)(H, gr, gr + H, gr + 2 * H, gr + 3 * H, cp + r * H,
                                  cn + r * H, tc + r * H, hn + r * H, pp, pp + H, pp + 2 * H,
                                  XV(in, r), w, w + H, w + 2 * H, w + 3 * H, bb, bb + H,
                                  bb + 2 * H, bb + 3 * H);
        }
    }
#undef CSB
#undef TCB
    FN(ring_out)(a, HSB(T), b0, nb);
}

/* One sequence's step back: the gate gradients d, dc in place, and the gradients of
 * b (gb*), W_ih (gw*, fused input side) and the peepholes (gp*) summed. Every block
 * is a parameter of its own: gcc vectorizes only when it knows that none overlap. */
static inline ALWAYS_INLINE void FN(lstm_bwd_row)(
    long H, const REAL *restrict gi, const REAL *restrict gf, const REAL *restrict go,
    const REAL *restrict gg, const REAL *restrict cp, const REAL *restrict cn,
    const REAL *restrict tc, const REAL *restrict dhb, REAL *restrict dcb,
    REAL *restrict di, REAL *restrict df, REAL *restrict dout, REAL *restrict dg,
    const REAL *restrict p0, const REAL *restrict p1, const REAL *restrict p2,
    REAL *restrict gp0, REAL *restrict gp1, REAL *restrict gp2, REAL xv,
    REAL *restrict gb0, REAL *restrict gb1, REAL *restrict gb2, REAL *restrict gb3,
    REAL *restrict gw0, REAL *restrict gw1, REAL *restrict gw2, REAL *restrict gw3)
{
    if (p0) {
        for (long j = 0; j < H; j++) {
            REAL i = gi[j], f = gf[j], og = go[j], g = gg[j];
            REAL th = tc[j], x = dhb[j], c_prev = cp[j];
            REAL d_o = x * th * (og * (1 - og));
            REAL c = dcb[j] + x * (og * (1 - th * th)) + d_o * p2[j];
            REAL d_i = c * g * (i * (1 - i));
            REAL d_f = c * c_prev * (f * (1 - f));
            REAL d_g = c * i * (1 - g * g);
            di[j] = d_i; df[j] = d_f; dout[j] = d_o; dg[j] = d_g;
            dcb[j] = c * f + d_i * p0[j] + d_f * p1[j];
            gp0[j] += d_i * c_prev;
            gp1[j] += d_f * c_prev;
            gp2[j] += d_o * cn[j];
            gb0[j] += d_i; gb1[j] += d_f; gb2[j] += d_o; gb3[j] += d_g;
            gw0[j] += xv * d_i; gw1[j] += xv * d_f; gw2[j] += xv * d_o; gw3[j] += xv * d_g;
        }
    } else {
        for (long j = 0; j < H; j++) {
            REAL i = gi[j], f = gf[j], og = go[j], g = gg[j];
            REAL th = tc[j], x = dhb[j];
            REAL c = dcb[j] + x * (og * (1 - th * th));
            REAL d_i = c * g * (i * (1 - i));
            REAL d_f = c * cp[j] * (f * (1 - f));
            REAL d_o = x * th * (og * (1 - og));
            REAL d_g = c * i * (1 - g * g);
            di[j] = d_i; df[j] = d_f; dout[j] = d_o; dg[j] = d_g;
            dcb[j] = c * f;
            gb0[j] += d_i; gb1[j] += d_f; gb2[j] += d_o; gb3[j] += d_g;
            gw0[j] += xv * d_i; gw1[j] += xv * d_f; gw2[j] += xv * d_o; gw3[j] += xv * d_g;
        }
    }
}

/* scratch per row: 2H + span * (H + G); plus G (dummy) */
static ATTR void FN(lstm_bwd)(const Args *a, long b0, long b1, char *scratch, const Grads *g)
{
    long T = a->T, B = a->B, H = a->H, G = 4 * H, nb = b1 - b0, BH = B * H;
    REAL *cur = (REAL *)scratch, *dh = cur, *dc = cur + nb * H;
    cur += 2 * nb * H;
    FN(Defer) q = FN(defer_init)(a, nb, &cur);
    REAL *dummy = cur;
    REAL *gp = (REAL *)g->extra, *gb = (REAL *)g->b, *gw = FN(gwih_target)(a, g, dummy);
    memset(dh, 0, sizeof(REAL) * 2 * nb * H);
    for (long t = T - 1; t >= 0; t--) {
        FN(In) in = FN(input_side)(a, t, b0);
        REAL *d = FN(defer_d)(&q, G);
        FN(seed)(a, t, b0, nb, dh);
        for (long r = 0; r < nb; r++) {
            long o = (b0 + r) * H;
            const REAL *gt = P(Gt) + (t * B + b0 + r) * G;
            REAL *dr = d + r * G;
            const REAL *pp = P(peep);
            if (t > 0) {
                FN(prefetch)(gt - B * G, G);
                FN(prefetch)(P(Cs) + (t - 1) * BH + o, H);
                FN(prefetch)(P(TC) + (t - 1) * BH + o, H);
                FN(prefetch)(P(Hs) + (t - 1) * BH + o, H);
            }
            FN(lstm_bwd_row)(H, gt, gt + H, gt + 2 * H, gt + 3 * H, P(Cs) + t * BH + o,
                             P(Cs) + (t + 1) * BH + o, P(TC) + t * BH + o, dh + r * H,
                             dc + r * H, dr, dr + H, dr + 2 * H, dr + 3 * H, pp,
                             pp ? pp + H : NULL, pp ? pp + 2 * H : NULL, gp,
                             gp ? gp + H : NULL, gp ? gp + 2 * H : NULL, XV(in, r), gb,
                             gb + H, gb + 2 * H, gb + 3 * H, gw, gw + H, gw + 2 * H, gw + 3 * H);
        }
        FN(bwd_step_end)(a, g, &q, t, b0, nb, d, dh);
    }
}

/* ---- GRU ----------------------------------------------------------------------------- */

static inline ALWAYS_INLINE void FN(gru_fwd_row_after)(
    long H, REAL *restrict ar, REAL *restrict az, REAL *restrict an,
    const REAL *restrict gr, const REAL *restrict gz, const REAL *restrict gn,
    const REAL *restrict bhn, const REAL *restrict h, REAL *restrict s, REAL *restrict hn,
    REAL xv, const REAL *restrict wr, const REAL *restrict wz, const REAL *restrict wn,
    const REAL *restrict br, const REAL *restrict bz, const REAL *restrict bn)
{
    for (long j = 0; j < H; j++) {
        REAL r = SIG_(ar[j] + (br[j] + xv * wr[j]) + gr[j]);
        REAL z = SIG_(az[j] + (bz[j] + xv * wz[j]) + gz[j]);
        REAL sv = gn[j] + bhn[j];
        REAL n = FN(tanh_)(an[j] + (bn[j] + xv * wn[j]) + r * sv);
        ar[j] = r; az[j] = z; an[j] = n; s[j] = sv;
        hn[j] = (h[j] - n) * z + n;
    }
}

static inline ALWAYS_INLINE void FN(gru_fwd_row_rz)(
    long H, REAL *restrict ar, REAL *restrict az, const REAL *restrict gr,
    const REAL *restrict gz, const REAL *restrict hm, REAL *restrict s, REAL xv,
    const REAL *restrict wr, const REAL *restrict wz, const REAL *restrict br,
    const REAL *restrict bz)
{
    for (long j = 0; j < H; j++) {
        REAL r = SIG_(ar[j] + (br[j] + xv * wr[j]) + gr[j]);
        ar[j] = r;
        az[j] = SIG_(az[j] + (bz[j] + xv * wz[j]) + gz[j]);
        s[j] = r * hm[j];
    }
}

static inline ALWAYS_INLINE void FN(gru_fwd_row_n)(
    long H, const REAL *restrict az, REAL *restrict an, const REAL *restrict gn,
    const REAL *restrict h, REAL *restrict hn, REAL xv, const REAL *restrict wn,
    const REAL *restrict bn)
{
    for (long j = 0; j < H; j++) {
        REAL n = FN(tanh_)(an[j] + (bn[j] + xv * wn[j]) + gn[j]);
        an[j] = n;
        hn[j] = (h[j] - n) * az[j] + n;
    }
}

/* store: gates into Gt (T, B, 3H), S (T, B, H) = h W_hn + b_hn (reset_after) or
 * r * h_masked (Cho); else both stay in the block's scratch.
 * scratch per row: 7H, and H without store, and 2H for the ring */
static ATTR void FN(gru_fwd)(const Args *a, long b0, long b1, char *scratch, const Grads *g)
{
    long T = a->T, B = a->B, H = a->H, G = 3 * H, nb = b1 - b0, BH = B * H;
    REAL *cur = (REAL *)scratch, *hmbuf = cur, *gh = hmbuf + nb * H, *step = gh + nb * G;
    cur = step + nb * G;
    REAL *sbuf = cur;
    if (!a->store) cur += nb * H;
    REAL *ring = FN(ring_init)(a, nb, &cur);
    (void)g;
    for (long t = 0; t < T; t++) {
        FN(In) in = FN(input_side)(a, t, b0);
        const REAL *hp = HSB(t);
        const REAL *hm = FN(masked)(a, hp, hmbuf, b0, nb);
        REAL *ga = a->store ? P(Gt) + (t * B + b0) * G : step;
        REAL *s0 = a->store ? P(S) + t * BH + b0 * H : sbuf;
        REAL *hn0 = HSB(t + 1);
        if (in.fused)
            for (long r = 0; r < nb; r++) memset(ga + r * G, 0, sizeof(REAL) * G);
        else
            FN(project)(a, t, b0, nb, ga, G);
        if (a->reset_after) {
            FN(mm)('N', nb, G, KREC(t, H), hm, H, P(Whh), G, 0, gh, G);
            for (long r = 0; r < nb; r++) {
                REAL *ar = ga + r * G;
                const REAL *q = gh + r * G;
                FN(gru_fwd_row_after)(H, ar, ar + H, ar + 2 * H, q, q + H, q + 2 * H, P(bhn),
                                      hp + r * H, s0 + r * H, hn0 + r * H, XV(in, r), in.w,
                                      in.w + H, in.w + 2 * H, in.b, in.b + H, in.b + 2 * H);
            }
        } else {
            FN(mm)('N', nb, 2 * H, KREC(t, H), hm, H, P(Whh), G, 0, gh, 2 * H);
            for (long r = 0; r < nb; r++) {
                REAL *ar = ga + r * G;
                const REAL *q = gh + r * 2 * H;
                FN(gru_fwd_row_rz)(H, ar, ar + H, q, q + H, hm + r * H, s0 + r * H, XV(in, r),
                                   in.w, in.w + H, in.b, in.b + H);
            }
            FN(mm)('N', nb, H, KREC(t, H), s0, H, P(Whh) + 2 * H, G, 0, gh, H);
            for (long r = 0; r < nb; r++) {
                REAL *ar = ga + r * G;
                FN(gru_fwd_row_n)(H, ar + H, ar + 2 * H, gh + r * H, hp + r * H, hn0 + r * H,
                                  XV(in, r), in.w + 2 * H, in.b + 2 * H);
            }
        }
    }
    FN(ring_out)(a, HSB(T), b0, nb);
}

static inline ALWAYS_INLINE void FN(gru_bwd_row_after)(
    long H, const REAL *restrict gr, const REAL *restrict gz, const REAL *restrict gn,
    const REAL *restrict hp, const REAL *restrict s, const REAL *restrict x,
    REAL *restrict dr, REAL *restrict dz, REAL *restrict dnr, REAL *restrict dn,
    REAL *restrict xz, REAL xv, REAL *restrict gb0, REAL *restrict gb1, REAL *restrict gb2,
    REAL *restrict gw0, REAL *restrict gw1, REAL *restrict gw2)
{
    for (long j = 0; j < H; j++) {
        REAL r = gr[j], z = gz[j], n = gn[j], v = x[j];
        REAL dnv = v * (1 - z) * (1 - n * n);
        REAL drv = dnv * s[j] * (r * (1 - r));
        REAL dzv = v * (hp[j] - n) * (z * (1 - z));
        dn[j] = dnv; dr[j] = drv; dz[j] = dzv;
        dnr[j] = dnv * r;
        xz[j] = v * z;
        gb0[j] += drv; gb1[j] += dzv; gb2[j] += dnv;
        gw0[j] += xv * drv; gw1[j] += xv * dzv; gw2[j] += xv * dnv;
    }
}

static inline ALWAYS_INLINE void FN(gru_bwd_row_zn)(
    long H, const REAL *restrict gz, const REAL *restrict gn, const REAL *restrict hp,
    const REAL *restrict x, REAL *restrict dz, REAL *restrict dn, REAL *restrict xz, REAL xv,
    REAL *restrict gb_z, REAL *restrict gw_z, REAL *restrict gb_n, REAL *restrict gw_n)
{
    for (long j = 0; j < H; j++) {
        REAL z = gz[j], n = gn[j], v = x[j];
        REAL dnv = v * (1 - z) * (1 - n * n);
        REAL dzv = v * (hp[j] - n) * (z * (1 - z));
        dn[j] = dnv; dz[j] = dzv;
        xz[j] = v * z;
        gb_z[j] += dzv; gb_n[j] += dnv;
        gw_z[j] += xv * dzv; gw_n[j] += xv * dnv;
    }
}

static inline ALWAYS_INLINE void FN(gru_bwd_row_r)(
    long H, const REAL *restrict gr, const REAL *restrict hm, REAL *restrict dr,
    REAL *restrict y, REAL xv, REAL *restrict gb, REAL *restrict gw)
{
    for (long j = 0; j < H; j++) {
        REAL r = gr[j];
        REAL drv = y[j] * hm[j] * (r * (1 - r));
        dr[j] = drv;
        y[j] *= r;
        gb[j] += drv;
        gw[j] += xv * drv;
    }
}

/* d (nb x 3H): [dr, dz, dn * r] (reset_after) or [dr, dz, -]; dn (nb x H): gradient
 * of the n gate's input side. The Cho form's W_hn gradient, (r * h_m).T @ dn, is
 * deferred like W_hh's (its rows in sb, dn in nbuf).
 * scratch per row: 4H + span * (H + G) + 2 span H; plus G (dummy) */
static ATTR void FN(gru_bwd)(const Args *a, long b0, long b1, char *scratch, const Grads *g)
{
    long T = a->T, B = a->B, H = a->H, F = a->F, G = 3 * H, nb = b1 - b0, BH = B * H;
    REAL *cur = (REAL *)scratch, *dh = cur, *dhz = cur + nb * H, *drh = cur + 2 * nb * H;
    REAL *dn1 = cur + 3 * nb * H;
    cur += 4 * nb * H;
    FN(Defer) q = FN(defer_init)(a, nb, &cur);
    REAL *sb = cur, *nbuf = cur + a->span * nb * H;
    cur += 2 * a->span * nb * H;
    REAL *dummy = cur;
    REAL *gWhh = (REAL *)g->Whh, *gb = (REAL *)g->b, *gw = FN(gwih_target)(a, g, dummy);
    REAL *gbhn = (REAL *)g->extra;
    memset(dh, 0, sizeof(REAL) * nb * H);
    for (long t = T - 1; t >= 0; t--) {
        FN(In) in = FN(input_side)(a, t, b0);
        const REAL *g0 = P(Gt) + (t * B + b0) * G, *hp0 = P(Hs) + t * BH + b0 * H;
        const REAL *s0 = P(S) + t * BH + b0 * H;
        long slot = q.used;
        REAL *d = FN(defer_d)(&q, G), *hm = FN(defer_h)(&q, H);
        REAL *dn = a->reset_after ? dn1 : nbuf + slot * nb * H;
        FN(seed)(a, t, b0, nb, dh);
        FN(copy_hm)(a, t, b0, nb, hm);
        for (long r = 0; r < nb; r++) {
            const REAL *gt = g0 + r * G;
            REAL *dr = d + r * G;
            if (t > 0) {
                FN(prefetch)(gt - B * G, G);
                FN(prefetch)(hp0 - BH + r * H, H);
                FN(prefetch)(s0 - BH + r * H, H);
            }
            if (a->reset_after)
                FN(gru_bwd_row_after)(H, gt, gt + H, gt + 2 * H, hp0 + r * H, s0 + r * H,
                                      dh + r * H, dr, dr + H, dr + 2 * H, dn + r * H,
                                      dhz + r * H, XV(in, r), gb, gb + H, gb + 2 * H, gw,
                                      gw + H, gw + 2 * H);
            else
                FN(gru_bwd_row_zn)(H, gt + H, gt + 2 * H, hp0 + r * H, dh + r * H, dr + H,
                                   dn + r * H, dhz + r * H, XV(in, r), gb + H, gw + H,
                                   gb + 2 * H, gw + 2 * H);
        }
        if (a->reset_after) {
            for (long r = 0; r < nb; r++)
                for (long j = 0; j < H; j++) gbhn[j] += d[r * G + 2 * H + j];
        } else {
            /* d(r * h_m) = dn @ W_n.T, then dr and the state's share through r */
            FN(mm)('N', nb, H, KREC(t, H), dn, H, P(WhhT) + 2 * H * H, H, 0, drh, H);
            for (long r = 0; r < nb; r++)
                FN(gru_bwd_row_r)(H, g0 + r * G, hm + r * H, d + r * G, drh + r * H,
                                  XV(in, r), gb, gw);
            memcpy(sb + slot * nb * H, s0, sizeof(REAL) * nb * H);
        }
        if (!in.fused) {
            FN(acc_wih)(a, t, b0, nb, 2 * H, d, G, (REAL *)g->Wih);
            FN(acc_wih)(a, t, b0, nb, H, dn, H, (REAL *)g->Wih + 2 * H);
        }
        if (a->dX) {
            REAL *dx = P(dX) + (t * B + b0) * F;
            FN(mm)('N', nb, F, 2 * H, d, G, P(WihT), F, 0, dx, F);
            FN(mm)('N', nb, F, H, dn, H, P(WihT) + 2 * H * F, F, 1, dx, F);
        }
        if (a->reset_after) {
            FN(mm)('N', nb, H, KREC(t, G), d, G, P(WhhT), H, 0, dh, H);
            FN(defer_push)(&q, t, H, G, G, gWhh, G);
        } else {
            memcpy(dh, drh, sizeof(REAL) * nb * H);
            FN(mm)('N', nb, H, KREC(t, 2 * H), d, G, P(WhhT), H, 1, dh, H);
            if (q.used + 1 == q.span || t == 0) /* W_hn's share before the span resets */
                FN(mm)('T', H, H, (q.used + (t > 0)) * nb, sb, H, nbuf, H, 1, gWhh + 2 * H, G);
            FN(defer_push)(&q, t, H, G, 2 * H, gWhh, G);
        }
        FN(mask_rows)(a, b0, nb, dh);
        for (long i = 0; i < nb * H; i++) dh[i] += dhz[i];
    }
}

/* ---- Adam ----------------------------------------------------------------------------- */

/* One Adam step over the flat parameter vector, with the rounding of the NumPy
 * implementation in skrnn/nn/_optimizers.py (each of its in-place operations is one
 * rounding in REAL, the step size multiplies in double), so both give the same bits.
 * Not cloned: the baseline instruction set has no FMA, so nothing gets fused. */
static void FN(adam)(Py_ssize_t n, REAL *theta, const REAL *g, REAL *m, REAL *v, double b1,
                     double b2, double eps, double lr)
{
    REAL b1r = (REAL)b1, c1 = (REAL)(1 - b1), b2r = (REAL)b2, c2 = (REAL)(1 - b2);
    REAL er = (REAL)eps;
    for (Py_ssize_t i = 0; i < n; i++) {
        REAL gi = g[i];
        REAL mi = m[i] * b1r;
        REAL t = c1 * gi;
        mi = mi + t;
        REAL vi = v[i] * b2r;
        REAL sq = gi * gi;
        sq = sq * c2;
        vi = vi + sq;
        REAL d = SQRT(vi);
        d = d + er;
        d = mi / d;
        d = (REAL)((double)d * lr);
        theta[i] = theta[i] - d;
        m[i] = mi;
        v[i] = vi;
    }
}

#undef P
#undef HS
