/* AVX-512 float32 activations and the LSTM gate pass, 16 lanes at a time.
 *
 * Included by the float32 instance of loops.h on x86-64 builds with AVX-512
 * clones; lstm_fwd_f uses it when the CPU has AVX-512, the LSTM has no peepholes and
 * the hidden size is a multiple of 16. The
 * generic loops of loops.h are written as scalar C for gcc to vectorize, which
 * costs the gate pass operations intrinsics avoid: gcc clamps tanh's argument with
 * three compares and two blends (it keeps NaN through a clamp only that way), and
 * has no vector form of ldexp for an exp-based sigmoid. The LSTM's gate pass runs
 * five activations per element and is a quarter to a half of its inference time.
 *
 * NaN propagates through every function here, as in the generic ones: vminps and
 * vmaxps return their second operand when either is NaN, so the clamps take x
 * second; vroundscaleps and vscalefps pass NaN on.
 */
#include <immintrin.h>

#define X16 static inline __attribute__((always_inline, target("arch=x86-64-v4")))

/* tanh through the rational function of tanh__f (loops.h), the clamp as
 * min/max: the same values inside the clamp; beyond it 1 - 2^-22 where tanh__f gives
 * 1 (gcc folds that branch to a constant). Within 5.0 ulp of tanh over every float. */
X16 __m512 x16_tanh(__m512 x)
{
    const __m512 lim = _mm512_set1_ps(7.90531110763549805f);
    __m512 c = _mm512_max_ps(_mm512_set1_ps(-7.90531110763549805f), _mm512_min_ps(lim, x));
    __m512 x2 = _mm512_mul_ps(c, c);
    __m512 p = _mm512_set1_ps(-2.76076847742355e-16f);
    p = _mm512_fmadd_ps(p, x2, _mm512_set1_ps(2.00018790482477e-13f));
    p = _mm512_fmadd_ps(p, x2, _mm512_set1_ps(-8.60467152213735e-11f));
    p = _mm512_fmadd_ps(p, x2, _mm512_set1_ps(5.12229709037114e-08f));
    p = _mm512_fmadd_ps(p, x2, _mm512_set1_ps(1.48572235717979e-05f));
    p = _mm512_fmadd_ps(p, x2, _mm512_set1_ps(6.37261928875436e-04f));
    p = _mm512_fmadd_ps(p, x2, _mm512_set1_ps(4.89352455891786e-03f));
    __m512 q = _mm512_set1_ps(1.19825839466702e-06f);
    q = _mm512_fmadd_ps(q, x2, _mm512_set1_ps(1.18534705686654e-04f));
    q = _mm512_fmadd_ps(q, x2, _mm512_set1_ps(2.26843463243900e-03f));
    q = _mm512_fmadd_ps(q, x2, _mm512_set1_ps(4.89352518554385e-03f));
    return _mm512_mul_ps(c, _mm512_div_ps(p, q));
}

/* sigmoid(2 h) for the halved pre-activation h: 1 / (1 + 2^z), z = -2 log2(e) h.
 * 2^z = 2^n 2^f with n = round(z) and f = z - n from the two-part constant (Cody and
 * Waite: h k rounded to float would be off by up to 5e-6 at |z| = 90); 2^f by the
 * degree-5 polynomial of least relative error on [-1/2, 1/2] (7.5e-8), 2^n by
 * vscalefps, which saturates to 0 and inf rather than wrapping the exponent. Within
 * 4.5 ulp over every float whose sigmoid is a normal float, so also near 0, where
 * 0.5 + 0.5 tanh loses every digit; about three quarters of the vector operations of
 * that form. */
X16 __m512 x16_sigmoid_half(__m512 h)
{
    const __m512 one = _mm512_set1_ps(1.0f);
    /* beyond |h| = 64 the result is 1, or 0 where a denormal would be exact; clamped
     * so that f stays in [-1/2, 1/2] where h k is past float precision */
    h = _mm512_max_ps(_mm512_set1_ps(-64.0f), _mm512_min_ps(_mm512_set1_ps(64.0f), h));
    const __m512 k_hi = _mm512_set1_ps(-2.885390043258667f), k_lo = _mm512_set1_ps(-3.851926067e-08f);
    __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(h, k_hi),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 f = _mm512_fmadd_ps(h, k_lo, _mm512_fmsub_ps(h, k_hi, n));
    __m512 p = _mm512_set1_ps(1.3276470427108556e-3f);
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(9.675541618345398e-3f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(5.550713280915189e-2f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(2.4022119718704435e-1f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(6.931469670586082e-1f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.0000000716556783f));
    __m512 e = _mm512_scalef_ps(p, n);
    return _mm512_div_ps(one, _mm512_add_ps(one, e));
}

/* lstm_gates_row_f for H a multiple of 16 */
X16 void x16_lstm_gates_row(
    long H, float *restrict ai, float *restrict af, float *restrict ao, float *restrict ag,
    const float *restrict cp, float *restrict cn, float *restrict ob, float xv,
    const float *restrict wi, const float *restrict wf, const float *restrict wo,
    const float *restrict wg, const float *restrict bi, const float *restrict bf,
    const float *restrict bo, const float *restrict bg)
{
    const __m512 x = _mm512_set1_ps(xv);
#define PRE(a, w, b) \
    _mm512_add_ps(_mm512_loadu_ps(a + j), \
                  _mm512_fmadd_ps(x, _mm512_loadu_ps(w + j), _mm512_loadu_ps(b + j)))
    for (long j = 0; j < H; j += 16) {
        __m512 i = x16_sigmoid_half(PRE(ai, wi, bi));
        __m512 f = x16_sigmoid_half(PRE(af, wf, bf));
        __m512 o = x16_sigmoid_half(PRE(ao, wo, bo));
        __m512 g = x16_tanh(PRE(ag, wg, bg));
        _mm512_storeu_ps(ai + j, i);
        _mm512_storeu_ps(af + j, f);
        _mm512_storeu_ps(ao + j, o);
        _mm512_storeu_ps(ag + j, g);
        _mm512_storeu_ps(ob + j, o);
        _mm512_storeu_ps(cn + j, _mm512_fmadd_ps(f, _mm512_loadu_ps(cp + j), _mm512_mul_ps(i, g)));
    }
#undef PRE
}

/* lstm_out_block_f: tanh(c) and h over n elements, n a multiple of 16 */
X16 void x16_lstm_out_block(
    long n, const float *restrict cn, const float *restrict ob, float *restrict tc,
    float *restrict hn)
{
    for (long k = 0; k < n; k += 16) {
        __m512 th = x16_tanh(_mm512_loadu_ps(cn + k));
        _mm512_storeu_ps(tc + k, th);
        _mm512_storeu_ps(hn + k, _mm512_mul_ps(_mm512_loadu_ps(ob + k), th));
    }
}

/* The activations of one step of lstm_fwd_f without peepholes, H a multiple of 16:
 * the gates row by row, then tanh(c) and h over the block. */
static __attribute__((target("arch=x86-64-v4"))) void x16_lstm_step(
    const Args *a, long t, long b0, long nb, float *ga, const float *cp, float *cn,
    float *ob, float *tc, float *hn, const float *xs, const float *w, const float *bb)
{
    long T = a->T, B = a->B, H = a->H, G = 4 * H, BH = B * H;
    for (long r = 0; r < nb; r++) {
        float *gr = ga + r * G;
        if (a->store && t + 1 < T) {
            long o = (b0 + r) * H;
            prefetch_w_f(gr + B * G, G);
            prefetch_w_f((float *)a->Cs + (t + 2) * BH + o, H);
            prefetch_w_f((float *)a->TC + (t + 1) * BH + o, H);
            prefetch_w_f((float *)a->Hs + (t + 2) * BH + o, H);
        }
        x16_lstm_gates_row(H, gr, gr + H, gr + 2 * H, gr + 3 * H, cp + r * H, cn + r * H,
                           ob + r * H, xs ? xs[r] : 0.0f, w, w + H, w + 2 * H, w + 3 * H, bb,
                           bb + H, bb + 2 * H, bb + 3 * H);
    }
    x16_lstm_out_block(nb * H, cn, ob, tc, hn);
}

/* x <- tanh(x) (which 0) or sigmoid(2 x) (which 1) over n elements, in place: lets
 * tests check the activations alone */
static __attribute__((target("arch=x86-64-v4"))) void x16_apply(float *x, long n, int which)
{
    for (long k = 0; k < n; k += 16) {
        __mmask16 m = n - k >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (n - k)) - 1);
        __m512 v = _mm512_maskz_loadu_ps(m, x + k);
        v = which ? x16_sigmoid_half(v) : x16_tanh(v);
        _mm512_mask_storeu_ps(x + k, m, v);
    }
}

#undef X16
