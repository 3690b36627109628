/* Compiled time loops for skrnn's recurrent layers (optional accelerator).
 *
 * The NumPy engine (skrnn/nn/_cells.py) stays the reference. This module runs a
 * layer's forward or backward pass over all time steps: per step, the input side,
 * the product with the recurrent weights (its own register-blocked kernel,
 * matmul.h: BLAS would re-pack the weights on every one of these small
 * products) and one fused, vectorised pass over the gates; the backward pass sums
 * the weight gradients as it goes. Only Python.h is needed to build it.
 *
 * Arrays come in through the buffer protocol and must be C-contiguous, of the
 * declared element count and of one dtype (float32 or float64) per call. The GIL is
 * released while a loop runs. The batch is cut into blocks of `block` sequences, which
 * n_threads threads share out; a block runs from the first step to the last (the
 * sequences of a batch are independent), so no synchronisation happens inside the
 * time loop, and the results do not depend on the number of threads.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>
#include <limits.h>
#include <math.h>
#include <string.h>

#if !defined(_WIN32)
#include <pthread.h>
#define FASTRNN_THREADS 1
#else
#define FASTRNN_THREADS 0
#endif

/* Clones of the hot loops for AVX-512 / AVX2+FMA machines, picked at load time, and
 * a 512-bit matrix-product kernel and float32 LSTM gate pass (gates_avx512.h) chosen
 * at run time on AVX-512 machines. */
#if defined(__GNUC__) && defined(__x86_64__) && defined(__linux__) && !defined(__clang__) \
    && !defined(FASTRNN_NO_CLONES)
#define ATTR __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#define FASTRNN_AVX512 1
static int have_avx512 = 0;
#else
#define ATTR
#define FASTRNN_AVX512 0
#endif

#if defined(__GNUC__)
#define ALWAYS_INLINE __attribute__((always_inline))
#else
#define ALWAYS_INLINE
#endif

/* Everything a time loop needs; the pointers are of the call's dtype. */
typedef struct {
    int kind; /* 1 float32, 2 float64 */
    long T, B, H, F, G;
    void *X, *Wih, *WihT, *b, *Whh, *WhhT, *peep, *bhn, *mask, *zeros;
    long span;  /* steps whose W_hh gradient rows are multiplied at once (backward) */
    long block; /* sequences per block (rows a thread runs together) */
    void *Hs, *Cs, *TC, *Gt, *S;
    void *dH, *dlast, *dX;
    int relu, store, reset_after;
    int hs_ring; /* forward without store: only the last state is wanted (Hs is B x H) */
} Args;

/* Weight gradients (one set per thread: partial sums over its rows). */
typedef struct {
    void *Wih, *Whh, *b, *extra; /* extra: LSTM peepholes (3, H) or GRU b_hn (H,) */
} Grads;

/* ---- float instantiation ---- */
#define REAL float
#define TANH_RATIONAL 1
#define X16_REAL FASTRNN_AVX512 /* the body includes gates_avx512.h */
#define UINT uint32_t
#define FN(name) name##_f
#define SQRT sqrtf
#define TANH_CLAMP 20.0f /* tanh(10) rounds to 1 in float */
#define EXP_SHIFT 0x1.8p23f
#define LN2_HI 0.693359375f
#define LN2_LO -2.12194440e-4f
#define EXP_BIAS 127u
#define MANT_BITS 23
#define EXPM1_POLY(r) \
    (0.5f + r * (1.0f / 6 + r * (1.0f / 24 + r * (1.0f / 120 + r * (1.0f / 720 + r * (1.0f / 5040))))))
#include "loops.h"
#undef REAL
#undef TANH_RATIONAL
#undef UINT
#undef FN
#undef SQRT
#undef TANH_CLAMP
#undef EXP_SHIFT
#undef LN2_HI
#undef LN2_LO
#undef EXP_BIAS
#undef MANT_BITS
#undef EXPM1_POLY
#undef SIG_
#undef X16_REAL

/* ---- double instantiation ---- */
#define REAL double
#define TANH_RATIONAL 0
#define X16_REAL 0
#define UINT uint64_t
#define FN(name) name##_d
#define SQRT sqrt
#define TANH_CLAMP 40.0 /* tanh(20) rounds to 1 in double */
#define EXP_SHIFT 0x1.8p52
#define LN2_HI 6.93147180369123816490e-01
#define LN2_LO 1.90821492927058770002e-10
#define EXP_BIAS 1023u
#define MANT_BITS 52
#define EXPM1_POLY(r)                                                                       \
    (1.0 / 2 + r * (1.0 / 6 + r * (1.0 / 24 + r * (1.0 / 120 + r * (1.0 / 720 + r * (1.0 / 5040 \
    + r * (1.0 / 40320 + r * (1.0 / 362880 + r * (1.0 / 3628800 + r * (1.0 / 39916800          \
    + r * (1.0 / 479001600 + r * (1.0 / 6227020800.0))))))))))))
#include "loops.h"

/* ---- argument handling ------------------------------------------------------------ */

#define MAXBUF 24

typedef struct {
    Py_buffer views[MAXBUF];
    int n;
    int kind; /* 0 unknown, 1 float32, 2 float64 */
} Buffers;

static void release_all(Buffers *bs)
{
    for (int i = 0; i < bs->n; i++) PyBuffer_Release(&bs->views[i]);
    bs->n = 0;
}

/* C-contiguous buffer of `count` elements of the call's dtype; None gives NULL when
 * allowed. Returns 0 and sets an exception on error. */
static int get(Buffers *bs, PyObject *obj, Py_ssize_t count, int writable, int optional,
               const char *name, void **out)
{
    *out = NULL;
    if (obj == Py_None) {
        if (optional) return 1;
        PyErr_Format(PyExc_TypeError, "%s must be an array, not None", name);
        return 0;
    }
    if (bs->n >= MAXBUF) {
        PyErr_SetString(PyExc_RuntimeError, "too many buffers");
        return 0;
    }
    Py_buffer *v = &bs->views[bs->n];
    int flags = PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | (writable ? PyBUF_WRITABLE : 0);
    if (PyObject_GetBuffer(obj, v, flags) < 0) return 0;
    bs->n++;
    const char *f = v->format ? v->format : "B";
    while (*f == '<' || *f == '@' || *f == '=') f++;
    int kind = 0;
    if (f[0] == 'f' && f[1] == 0 && v->itemsize == 4) kind = 1;
    if (f[0] == 'd' && f[1] == 0 && v->itemsize == 8) kind = 2;
    if (!kind || (bs->kind && kind != bs->kind)) {
        PyErr_Format(PyExc_TypeError, "%s: expected float32 or float64 like the other "
                     "arrays, got format '%s'", name, v->format ? v->format : "B");
        return 0;
    }
    bs->kind = kind;
    if (v->len != count * v->itemsize) {
        PyErr_Format(PyExc_ValueError, "%s: expected %zd elements, got %zd", name, count,
                     (Py_ssize_t)(v->len / v->itemsize));
        return 0;
    }
    *out = v->buf;
    return 1;
}

/* ---- batch splitting ---------------------------------------------------------------- */

/* The batch is cut into blocks of `block` sequences (the caller's choice, a function of
 * the batch size only), whatever the number of threads; the threads share the
 * blocks out, and the gradients of each block go to their own partial sums, added in
 * block order at the end. So the results do not depend on the number of threads,
 * and a refit gives the same bits under any thread limit. Small blocks let a batch
 * of 32 keep two cores busy; the products stay efficient because they never pack
 * their operands, and the W_hh gradient gathers DEFER_ROWS rows (several steps)
 * per product. */
#define DEFER_ROWS 128

typedef void (*loop_fn)(const Args *a, long b0, long b1, char *scratch, const Grads *g);

/* The work memory of a call (scratch and partial gradient sums: about a megabyte for a
 * batch of 256 with 64 units) is kept for the next call instead of being freed. A
 * block that size would otherwise be mmap'ed and unmapped at every call, and its
 * pages faulted in and zeroed again, for every batch of a fit. One block is kept, the
 * largest recently used; concurrent calls that find it taken allocate their own. */
#if FASTRNN_THREADS
static pthread_mutex_t work_lock = PTHREAD_MUTEX_INITIALIZER;
#define WORK_LOCK() pthread_mutex_lock(&work_lock)
#define WORK_UNLOCK() pthread_mutex_unlock(&work_lock)
#else
#define WORK_LOCK() ((void)0)
#define WORK_UNLOCK() ((void)0)
#endif
static void *work_block = NULL;
static size_t work_size = 0;

static void *work_take(size_t n, size_t *got)
{
    void *p = NULL;
    WORK_LOCK();
    if (work_block && work_size >= n) {
        p = work_block;
        *got = work_size;
        work_block = NULL;
        work_size = 0;
    }
    WORK_UNLOCK();
    if (!p) {
        p = malloc(n);
        *got = n;
    }
    return p;
}

static void work_give(void *p, size_t n)
{
    WORK_LOCK();
    if (!work_block || work_size < n) {
        void *old = work_block;
        work_block = p;
        work_size = n;
        p = old;
    }
    WORK_UNLOCK();
    free(p);
}

typedef struct {
    loop_fn fn;
    const Args *a;
    int first, step, nblk; /* this thread runs blocks first, first + step, ... */
    char *scratch;
    Grads *g; /* per block */
} Part;

static void *run_part(void *arg)
{
    Part *p = (Part *)arg;
    long B = p->a->B, bl = p->a->block;
    for (int k = p->first; k < p->nblk; k += p->step) {
        long b0 = (long)k * bl, b1 = b0 + bl < B ? b0 + bl : B;
        p->fn(p->a, b0, b1, p->scratch, &p->g[k]);
    }
    return NULL;
}

/* ---- worker threads ---------------------------------------------------------------
 *
 * A training epoch makes two calls per batch (forward, backward): with batches of 32,
 * over 600 calls. Starting and joining a thread costs about 100 microseconds here
 * (measured: pthread_create + pthread_join), a fifth of a whole forward call at
 * T=50, H=64, B=32, and the started thread begins its blocks that much later than the
 * calling one. So the threads are started once, on first need, and then sleep on a
 * condition variable between calls. One call at a time uses them (pool_busy); a call
 * from another Python thread that finds them busy starts threads of its own, as
 * before. A forked child has no such threads: pthread_atfork resets the pool there. */
#if FASTRNN_THREADS
#define POOL_MAX 63
static pthread_mutex_t pool_mx = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t pool_go = PTHREAD_COND_INITIALIZER;   /* a new round of tasks */
static pthread_cond_t pool_done = PTHREAD_COND_INITIALIZER; /* the round is finished */
static int pool_size = 0;         /* workers started */
static int pool_busy = 0;         /* a call is using them */
static int pool_pending = 0;      /* tasks handed out and not finished */
static Part *pool_task[POOL_MAX]; /* worker k's next task, or NULL */
static int pool_atfork_set = 0;

static void *pool_worker(void *arg)
{
    long id = (long)(intptr_t)arg;
    pthread_mutex_lock(&pool_mx);
    for (;;) {
        while (!pool_task[id]) pthread_cond_wait(&pool_go, &pool_mx);
        Part *p = pool_task[id];
        pool_task[id] = NULL;
        pthread_mutex_unlock(&pool_mx);
        run_part(p);
        pthread_mutex_lock(&pool_mx);
        if (--pool_pending == 0) pthread_cond_signal(&pool_done);
    }
    return NULL;
}

static void pool_after_fork_child(void)
{
    /* only the forking thread exists in the child */
    pthread_mutex_init(&pool_mx, NULL);
    pthread_cond_init(&pool_go, NULL);
    pthread_cond_init(&pool_done, NULL);
    pool_size = 0;
    pool_busy = 0;
    pool_pending = 0;
    for (int k = 0; k < POOL_MAX; k++) pool_task[k] = NULL;
}

/* Hand parts[1..n-1] to the workers; 0 when they are busy (the caller starts its own
 * threads then). Parts for which no worker could be started are left to the caller:
 * *given is how many were handed out. */
static int pool_start(Part *parts, int n, int *given)
{
    pthread_mutex_lock(&pool_mx);
    if (pool_busy) {
        pthread_mutex_unlock(&pool_mx);
        return 0;
    }
    if (!pool_atfork_set) {
        pool_atfork_set = pthread_atfork(NULL, NULL, pool_after_fork_child) == 0;
    }
    while (pool_size < n - 1 && pool_size < POOL_MAX) {
        pthread_t tid;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        int rc = pthread_create(&tid, &attr, pool_worker, (void *)(intptr_t)pool_size);
        pthread_attr_destroy(&attr);
        if (rc != 0) break;
        pool_size++;
    }
    int k = 0;
    for (; k < n - 1 && k < pool_size; k++) pool_task[k] = &parts[k + 1];
    *given = k;
    pool_busy = 1;
    pool_pending = k;
    if (k) pthread_cond_broadcast(&pool_go);
    pthread_mutex_unlock(&pool_mx);
    return 1;
}

static void pool_finish(void)
{
    pthread_mutex_lock(&pool_mx);
    while (pool_pending > 0) pthread_cond_wait(&pool_done, &pool_mx);
    pool_busy = 0;
    pthread_mutex_unlock(&pool_mx);
}
#endif

#define ALIGN_UP(n) (((n) + 63) & ~(size_t)63)

/* scratch_per_row: elements of work space per row of a block, plus span_per_row per
 * row and deferred step (backward); with gradients
 * (gsizes: element counts of Wih, Whh, b, extra), block 0 writes into `out`
 * (zeroed here) and every other block into zeroed partial sums, added to `out`
 * afterwards in block order. Returns -1 when memory runs out. */
static int run_loop(loop_fn fn, Args *a, size_t scratch_per_row, size_t span_per_row,
                    int n_threads, const Grads *out, const size_t gsizes[4])
{
    long B = a->B;
    size_t isz = a->kind == 1 ? 4 : 8;
    if (a->block < 1) a->block = B > 0 ? B : 1;
    long nblk_l = (B + a->block - 1) / a->block;
    if (nblk_l < 1) { /* no sequences: zero gradients */
        if (gsizes) {
            void *dst[4] = {out->Wih, out->Whh, out->b, out->extra};
            for (int i = 0; i < 4; i++)
                if (dst[i]) memset(dst[i], 0, gsizes[i] * isz);
        }
        return 0;
    }
    if (nblk_l > 1 << 20) return -1;
    int nblk = (int)nblk_l;
    if (n_threads > nblk) n_threads = nblk;
    if (n_threads < 1) n_threads = 1;
    if (n_threads > 64) n_threads = 64;
#if !FASTRNN_THREADS
    n_threads = 1;
#endif
    long rows = B < a->block ? B : a->block;
    a->span = (DEFER_ROWS + rows - 1) / rows;
    if (a->span > a->T) a->span = a->T > 0 ? a->T : 1;
    /* per thread: the rows' work space and G more (a dummy gradient row) */
    size_t per_thread = ALIGN_UP(
        isz * ((scratch_per_row + span_per_row * (size_t)a->span) * (size_t)rows + (size_t)a->G)
        + 64);
    void *zeros = calloc((size_t)a->G + 1, isz); /* the input side's zero vectors */
    if (!zeros) return -1;
    a->zeros = zeros;
    size_t gblock = 0;
    if (gsizes)
        for (int i = 0; i < 4; i++) gblock += ALIGN_UP(gsizes[i] * isz);
    size_t total = 64 + per_thread * n_threads + gblock * (size_t)(nblk - 1)
        + sizeof(Grads) * (size_t)nblk;
    size_t mem_size;
    char *mem = work_take(total, &mem_size);
    if (!mem) {
        free(zeros);
        return -1;
    }
    char *cur = (char *)ALIGN_UP((uintptr_t)mem);
    Grads *gs = (Grads *)cur;
    cur += ALIGN_UP(sizeof(Grads) * (size_t)nblk);
    memset(gs, 0, sizeof(Grads) * (size_t)nblk);
    if (gsizes) {
        void *src[4] = {out->Wih, out->Whh, out->b, out->extra};
        for (int k = 0; k < nblk; k++) {
            void **dst[4] = {&gs[k].Wih, &gs[k].Whh, &gs[k].b, &gs[k].extra};
            for (int i = 0; i < 4; i++) {
                if (!src[i]) continue;
                if (k == 0) {
                    *dst[i] = src[i];
                } else {
                    *dst[i] = cur;
                    cur += ALIGN_UP(gsizes[i] * isz);
                }
                memset(*dst[i], 0, gsizes[i] * isz);
            }
        }
    }
    Part parts[64];
    for (int k = 0; k < n_threads; k++) {
        parts[k].fn = fn;
        parts[k].a = a;
        parts[k].first = k;
        parts[k].step = n_threads;
        parts[k].nblk = nblk;
        parts[k].scratch = cur;
        parts[k].g = gs;
        cur += per_thread;
    }
#if FASTRNN_THREADS
    int given = 0;
    if (n_threads > 1 && pool_start(parts, n_threads, &given)) {
        run_part(&parts[0]);
        for (int k = 1 + given; k < n_threads; k++) /* no worker for it: run it here */
            run_part(&parts[k]);
        pool_finish();
    } else {
        pthread_t tids[64];
        int started[64] = {0};
        for (int k = 1; k < n_threads; k++)
            started[k] = pthread_create(&tids[k], NULL, run_part, &parts[k]) == 0;
        run_part(&parts[0]);
        for (int k = 1; k < n_threads; k++) {
            if (started[k])
                pthread_join(tids[k], NULL);
            else /* could not start a thread: run its share here */
                run_part(&parts[k]);
        }
    }
#else
    run_part(&parts[0]);
#endif
    if (gsizes) {
        void *dst[4] = {out->Wih, out->Whh, out->b, out->extra};
        for (int k = 1; k < nblk; k++) {
            void *src[4] = {gs[k].Wih, gs[k].Whh, gs[k].b, gs[k].extra};
            for (int i = 0; i < 4; i++) {
                if (!dst[i]) continue;
                if (a->kind == 1) {
                    float *d = dst[i], *s = src[i];
                    for (size_t j = 0; j < gsizes[i]; j++) d[j] += s[j];
                } else {
                    double *d = dst[i], *s = src[i];
                    for (size_t j = 0; j < gsizes[i]; j++) d[j] += s[j];
                }
            }
        }
    }
    work_give(mem, mem_size);
    free(zeros);
    a->zeros = NULL;
    return 0;
}

static PyObject *finish(Buffers *bs, loop_fn fn, Args *a, size_t scratch_per_row,
                        size_t span_per_row, int n_threads, const Grads *g,
                        const size_t *gsizes)
{
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = run_loop(fn, a, scratch_per_row, span_per_row, n_threads, g, gsizes);
    Py_END_ALLOW_THREADS
    release_all(bs);
    if (rc < 0) return PyErr_NoMemory();
    Py_RETURN_NONE;
}

#define LOOP(name) \
    static void loop_##name(const Args *a, long b0, long b1, char *s, const Grads *g) \
    { if (a->kind == 1) name##_f(a, b0, b1, s, g); else name##_d(a, b0, b1, s, g); }
LOOP(rnn_fwd)
LOOP(rnn_bwd)
LOOP(lstm_fwd)
LOOP(lstm_bwd)
LOOP(gru_fwd)
LOOP(gru_bwd)

static int dims_ok(long T, long B, long F, long H)
{
    if (T < 0 || B < 0 || F < 1 || H < 1 || T > INT_MAX || B > INT_MAX || F > INT_MAX
        || H > INT_MAX / 4) {
        PyErr_SetString(PyExc_ValueError, "bad dimensions");
        return 0;
    }
    return 1;
}

/* ---- Python entry points ------------------------------------------------------------------ */

/* forward(cell, T, B, F, H, X, Wih, b, Whh, extra, Hs, Cs, TC, Gt, S, mask, flag, store,
 *         ring, block, n_threads)
 * store: Hs, Cs (T+1, B, H), TC, S (T, B, H) and Gt (T, B, G) keep every step for the
 * backward pass. Without store, Cs, TC, S and Gt are None (the loops keep what they
 * need in scratch) and Hs holds all states (T+1, B, H), or with ring only the last
 * one (B, H).
 * cell 0 SimpleRNN (flag: relu), 1 LSTM (extra: halved peepholes or None),
 * 2 GRU (flag: reset_after; extra: b_hn or None). Unused arrays are None. */
static PyObject *py_forward(PyObject *self, PyObject *args)
{
    int cell, flag, store, ring, nt;
    long T, B, F, H, block;
    PyObject *oX, *oWih, *ob, *oWhh, *oE, *oHs, *oCs, *oTC, *oGt, *oS, *oM;
    if (!PyArg_ParseTuple(args, "illllOOOOOOOOOOOpppli", &cell, &T, &B, &F, &H, &oX, &oWih,
                          &ob, &oWhh, &oE, &oHs, &oCs, &oTC, &oGt, &oS, &oM, &flag, &store,
                          &ring, &block, &nt))
        return NULL;
    if (!dims_ok(T, B, F, H)) return NULL;
    if (cell < 0 || cell > 2) return PyErr_Format(PyExc_ValueError, "bad cell %d", cell);
    long ng = cell == 0 ? 1 : (cell == 1 ? 4 : 3), G = ng * H;
    Buffers bs = {0};
    Args a = {0};
    a.T = T; a.B = B; a.F = F; a.H = H; a.G = G; a.store = store; a.block = block;
    a.hs_ring = ring && !store;
    a.relu = cell == 0 && flag;
    a.reset_after = cell == 2 && flag;
    int ok = get(&bs, oX, T * B * F, 0, 0, "X", &a.X)
        && get(&bs, oWih, F * G, 0, 0, "W_ih", &a.Wih) && get(&bs, ob, G, 0, 0, "b", &a.b)
        && get(&bs, oWhh, H * G, 0, 0, "W_hh", &a.Whh)
        && get(&bs, oHs, (a.hs_ring ? 1 : T + 1) * B * H, 1, 0, "Hs", &a.Hs)
        && get(&bs, oM, B * H, 0, 1, "mask", &a.mask);
    /* scratch per row (see each loop): its own, the ring's 2H, and without store the
     * steps of c, tanh(c) (LSTM) or S (GRU) */
    size_t per_row = H + (a.hs_ring ? 2 * H : 0);
    loop_fn fn = loop_rnn_fwd;
    if (ok && cell == 1) {
        ok = get(&bs, oE, 3 * H, 0, 1, "peep", &a.peep)
            && get(&bs, oCs, (T + 1) * B * H, 1, 1, "Cs", &a.Cs)
            && get(&bs, oTC, T * B * H, 1, 1, "TC", &a.TC)
            && get(&bs, oGt, T * B * G, 1, 1, "Gt", &a.Gt);
        per_row += 5 * H + (store ? 0 : 3 * H);
        fn = loop_lstm_fwd;
    } else if (ok && cell == 2) {
        ok = get(&bs, oE, H, 0, !a.reset_after, "b_hn", &a.bhn)
            && get(&bs, oS, T * B * H, 1, 1, "S", &a.S)
            && get(&bs, oGt, T * B * G, 1, 1, "Gt", &a.Gt);
        per_row += 6 * H + (store ? 0 : H);
        fn = loop_gru_fwd;
    }
    if (ok && cell > 0) {
        int given = a.Gt && (cell == 1 ? a.Cs && a.TC : a.S != NULL);
        int none = !a.Gt && !a.Cs && !a.TC && !a.S;
        if (store ? !given : !none) {
            PyErr_SetString(PyExc_TypeError,
                            store ? "Gt and Cs, TC (LSTM) or S (GRU) are needed when store is "
                                    "true"
                                  : "Gt, Cs, TC and S must be None when store is false");
            ok = 0;
        }
    }
    if (!ok) {
        release_all(&bs);
        return NULL;
    }
    a.kind = bs.kind;
    return finish(&bs, fn, &a, per_row, 0, nt, NULL, NULL);
}

/* backward(cell, T, B, F, H, X, WihT, WhhT, extra, Hs, Cs, TC, Gt, S, mask, dH, dlast,
 *          dX, gWih, gWhh, gb, gextra, flag, block, n_threads)
 * WihT: W_ih.T (G x F), needed with dX only; extra: raw peepholes (LSTM) or None;
 * gextra: their gradient (LSTM) or b_hn's (GRU, reset_after). The gradients are
 * overwritten. */
static PyObject *py_backward(PyObject *self, PyObject *args)
{
    int cell, flag, nt;
    long T, B, F, H, block;
    PyObject *oX, *oWih, *oWhhT, *oE, *oHs, *oCs, *oTC, *oGt, *oS, *oM, *odH, *odl, *odX;
    PyObject *ogWih, *ogWhh, *ogb, *ogE;
    if (!PyArg_ParseTuple(args, "illllOOOOOOOOOOOOOOOOOpli", &cell, &T, &B, &F, &H, &oX,
                          &oWih, &oWhhT, &oE, &oHs, &oCs, &oTC, &oGt, &oS, &oM, &odH, &odl,
                          &odX, &ogWih, &ogWhh, &ogb, &ogE, &flag, &block, &nt))
        return NULL;
    if (!dims_ok(T, B, F, H)) return NULL;
    if (cell < 0 || cell > 2) return PyErr_Format(PyExc_ValueError, "bad cell %d", cell);
    long ng = cell == 0 ? 1 : (cell == 1 ? 4 : 3), G = ng * H;
    Buffers bs = {0};
    Args a = {0};
    Grads g = {0};
    a.T = T; a.B = B; a.F = F; a.H = H; a.G = G; a.store = 1; a.block = block;
    a.relu = cell == 0 && flag;
    a.reset_after = cell == 2 && flag;
    int ok = get(&bs, oX, T * B * F, 0, 0, "X", &a.X)
        && get(&bs, oWih, G * F, 0, 1, "W_ih.T", &a.WihT)
        && get(&bs, oWhhT, G * H, 0, 0, "W_hh.T", &a.WhhT)
        && get(&bs, oHs, (T + 1) * B * H, 0, 0, "Hs", &a.Hs)
        && get(&bs, oM, B * H, 0, 1, "mask", &a.mask)
        && get(&bs, odH, T * B * H, 0, 1, "dH", &a.dH)
        && get(&bs, odl, B * H, 0, 1, "dh_last", &a.dlast)
        && get(&bs, odX, T * B * F, 1, 1, "dX", &a.dX)
        && get(&bs, ogWih, F * G, 1, 0, "grad W_ih", &g.Wih)
        && get(&bs, ogWhh, H * G, 1, 0, "grad W_hh", &g.Whh)
        && get(&bs, ogb, G, 1, 0, "grad b", &g.b);
    size_t gsizes[4] = {(size_t)(F * G), (size_t)(H * G), (size_t)G, 0};
    /* work space per row (see the loops), and per row and deferred step */
    size_t per_row = H, span_row = H + G;
    loop_fn fn = loop_rnn_bwd;
    if (ok && cell == 1) {
        ok = get(&bs, oCs, (T + 1) * B * H, 0, 0, "Cs", &a.Cs)
            && get(&bs, oTC, T * B * H, 0, 0, "TC", &a.TC)
            && get(&bs, oGt, T * B * G, 0, 0, "Gt", &a.Gt)
            && get(&bs, oE, 3 * H, 0, 1, "peep", &a.peep)
            && get(&bs, ogE, 3 * H, 1, a.peep == NULL, "grad peep", &g.extra);
        gsizes[3] = 3 * H;
        per_row = 2 * H;
        fn = loop_lstm_bwd;
        if (ok && a.peep && !g.extra) {
            PyErr_SetString(PyExc_TypeError, "grad peep is needed with peepholes");
            ok = 0;
        }
        if (ok && !a.peep) g.extra = NULL;
    } else if (ok && cell == 2) {
        ok = get(&bs, oS, T * B * H, 0, 0, "S", &a.S)
            && get(&bs, oGt, T * B * G, 0, 0, "Gt", &a.Gt)
            && get(&bs, ogE, H, 1, !a.reset_after, "grad b_hn", &g.extra);
        gsizes[3] = H;
        per_row = 4 * H;
        span_row = H + G + 2 * H;
        fn = loop_gru_bwd;
        if (ok && !a.reset_after) g.extra = NULL;
    }
    if (ok && a.dX && !a.WihT) {
        PyErr_SetString(PyExc_TypeError, "W_ih.T is needed with dX");
        ok = 0;
    }
    if (!ok) {
        release_all(&bs);
        return NULL;
    }
    a.kind = bs.kind;
    return finish(&bs, fn, &a, per_row, span_row, nt, &g, gsizes);
}

/* tanh of a contiguous array, in place: lets tests check the activation alone */
static ATTR void vtanh_f(float *x, Py_ssize_t n) { for (Py_ssize_t i = 0; i < n; i++) x[i] = tanh__f(x[i]); }
static ATTR void vtanh_d(double *x, Py_ssize_t n) { for (Py_ssize_t i = 0; i < n; i++) x[i] = tanh__d(x[i]); }

/* the writable buffer of a contiguous float32 or float64 array x, whatever its shape,
 * and its element count; 0 with the error set (and nothing held) if it is not one */
static int get_inplace(Buffers *bs, PyObject *o, void **p, Py_ssize_t *count)
{
    Py_buffer v;
    if (PyObject_GetBuffer(o, &v, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0) return 0;
    *count = v.itemsize ? v.len / v.itemsize : 0;
    PyBuffer_Release(&v);
    if (!get(bs, o, *count, 1, 0, "x", p)) {
        release_all(bs);
        return 0;
    }
    return 1;
}

static PyObject *py_tanh_inplace(PyObject *self, PyObject *o)
{
    Buffers bs = {0};
    void *p;
    Py_ssize_t count;
    if (!get_inplace(&bs, o, &p, &count)) return NULL;
    int kind = bs.kind;
    Py_BEGIN_ALLOW_THREADS
    if (kind == 1) vtanh_f(p, count); else vtanh_d(p, count);
    Py_END_ALLOW_THREADS
    release_all(&bs);
    Py_RETURN_NONE;
}

/* x16_inplace(x, which): the AVX-512 activations of gates_avx512.h on a float32
 * array, in place (which: "tanh" or "sigmoid", the latter of 2 x: the gate passes
 * take the sigmoid of halved pre-activations) */
static PyObject *py_x16_inplace(PyObject *self, PyObject *args)
{
    PyObject *o;
    const char *which;
    if (!PyArg_ParseTuple(args, "Os", &o, &which)) return NULL;
    int sig = strcmp(which, "sigmoid") == 0;
    if (!sig && strcmp(which, "tanh") != 0)
        return PyErr_Format(PyExc_ValueError, "which must be 'tanh' or 'sigmoid', got %R",
                            PyTuple_GET_ITEM(args, 1));
#if FASTRNN_AVX512
    if (!have_avx512)
#endif
        return PyErr_Format(PyExc_RuntimeError, "this CPU or build has no AVX-512 kernels");
#if FASTRNN_AVX512
    Buffers bs = {0};
    void *p;
    Py_ssize_t count;
    if (!get_inplace(&bs, o, &p, &count)) return NULL;
    if (bs.kind != 1) {
        release_all(&bs);
        return PyErr_Format(PyExc_TypeError, "x must be float32");
    }
    Py_BEGIN_ALLOW_THREADS
    x16_apply(p, count, sig);
    Py_END_ALLOW_THREADS
    release_all(&bs);
    Py_RETURN_NONE;
#endif
}

/* matmul(M, N, K, A, B, C, trans_a, accumulate): C (M x N) = / += op(A) @ B with the
 * loops' own product; for tests and benchmarks. */
static PyObject *py_matmul(PyObject *self, PyObject *args)
{
    long M, N, K;
    int ta, accumulate;
    PyObject *oA, *oB, *oC;
    if (!PyArg_ParseTuple(args, "lllOOOpp", &M, &N, &K, &oA, &oB, &oC, &ta, &accumulate))
        return NULL;
    if (M < 1 || N < 1 || K < 0 || M > INT_MAX || N > INT_MAX || K > INT_MAX)
        return PyErr_Format(PyExc_ValueError, "bad dimensions");
    Buffers bs = {0};
    void *A, *B, *C;
    if (!get(&bs, oA, M * K, 0, 0, "A", &A) || !get(&bs, oB, K * N, 0, 0, "B", &B)
        || !get(&bs, oC, M * N, 1, 0, "C", &C)) {
        release_all(&bs);
        return NULL;
    }
    int kind = bs.kind;
    char cta = ta ? 'T' : 'N';
    long lda = ta ? M : K;
    Py_BEGIN_ALLOW_THREADS
    if (kind == 1)
        mm_f(cta, M, N, K, A, lda, B, N, accumulate ? 1.0f : 0.0f, C, N);
    else
        mm_d(cta, M, N, K, A, lda, B, N, accumulate ? 1.0 : 0.0, C, N);
    Py_END_ALLOW_THREADS
    release_all(&bs);
    Py_RETURN_NONE;
}

/* adam(theta, grad, m, v, beta_1, beta_2, epsilon, lr): one Adam step in place. */
static PyObject *py_adam(PyObject *self, PyObject *args)
{
    PyObject *ot, *og, *om, *ov;
    double b1, b2, eps, lr;
    if (!PyArg_ParseTuple(args, "OOOOdddd", &ot, &og, &om, &ov, &b1, &b2, &eps, &lr))
        return NULL;
    Buffers bs = {0};
    void *t, *g, *m, *v;
    Py_buffer probe;
    if (PyObject_GetBuffer(ot, &probe, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0) return NULL;
    Py_ssize_t n = probe.itemsize ? probe.len / probe.itemsize : 0;
    PyBuffer_Release(&probe);
    if (!get(&bs, ot, n, 1, 0, "theta", &t) || !get(&bs, og, n, 0, 0, "grad", &g)
        || !get(&bs, om, n, 1, 0, "m", &m) || !get(&bs, ov, n, 1, 0, "v", &v)) {
        release_all(&bs);
        return NULL;
    }
    int kind = bs.kind;
    Py_BEGIN_ALLOW_THREADS
    if (kind == 1)
        adam_f(n, t, g, m, v, b1, b2, eps, lr);
    else
        adam_d(n, t, g, m, v, b1, b2, eps, lr);
    Py_END_ALLOW_THREADS
    release_all(&bs);
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"adam", py_adam, METH_VARARGS, "One Adam step in place (same bits as NumPy's)."},
    {"matmul", py_matmul, METH_VARARGS, "The loops' matrix product (tests, benchmarks)."},
    {"forward", py_forward, METH_VARARGS, "Forward time loop of a recurrent layer."},
    {"backward", py_backward, METH_VARARGS,
     "Backward time loop of a recurrent layer, with its weight gradients."},
    {"tanh_inplace", py_tanh_inplace, METH_O, "The kernels' tanh, in place."},
    {"x16_inplace", py_x16_inplace, METH_VARARGS,
     "The AVX-512 float32 tanh or sigmoid(2 x) of the LSTM gate pass, in place."},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef moddef = {
    PyModuleDef_HEAD_INIT,
    .m_name = "_fastrnn",
    .m_doc = "Compiled time loops of skrnn's recurrent layers.",
    .m_size = -1,
    .m_methods = methods,
};

PyMODINIT_FUNC PyInit__fastrnn(void)
{
#if FASTRNN_AVX512
    __builtin_cpu_init();
    have_avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl")
        && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq");
#endif
    PyObject *m = PyModule_Create(&moddef);
    if (m) PyModule_AddIntConstant(m, "HAS_THREADS", FASTRNN_THREADS);
#if FASTRNN_AVX512
    if (m) PyModule_AddIntConstant(m, "AVX512", have_avx512);
#else
    if (m) PyModule_AddIntConstant(m, "AVX512", 0);
#endif
    return m;
}
