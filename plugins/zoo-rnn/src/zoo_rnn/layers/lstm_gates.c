/* The LSTM's per-step gate arithmetic, forward and backward, in one pass over a step's
 * (B, 4H) pre-activations (see fused_lstm.py's docstring for the equations and the layout):
 * built once by the system C compiler through zoo.native and called through ctypes, in place
 * of some twenty small ATen operations per step.
 *
 * exp is a polynomial that the compiler vectorises (glibc's expf is not, without
 * -ffast-math): Cody-Waite reduction x = n ln2 + r, |r| <= ln2/2, and Cephes' degree-7
 * expansion of e^r, within 2 ulp of expf; sigma(x) = 1 / (1 + e^-x), tanh(x) = 2 sigma(2x) - 1.
 * All arrays are C-contiguous float32 with rows of H (or 4H) floats, except dy's rows, which
 * are ldy floats apart.
 */
#include <stdint.h>
#include <string.h>

/* Built with -fopenmp only where that binds to torch's own OpenMP runtime (lstm_native.py):
 * the rows of a step are then shared by torch's threads; without it the pragmas are ignored.
 * Below PARALLEL_MIN floats a step stays on the calling thread. */
#define PARALLEL_MIN 4096

static inline float exp_poly(float x) {
    x = x < -87.3f ? -87.3f : x;            /* 2^n stays a normal float */
    x = x > 88.3f ? 88.3f : x;
    float n = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;  /* round(x / ln 2) */
    float r = x - n * 0.693359375f;         /* ln 2 in two parts */
    r = r - n * -2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * (r * r) + r + 1.0f;
    int32_t bits = ((int32_t)n + 127) << 23; /* 2^n */
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    return p * scale;
}

static inline float sigmoid(float x) { return 1.0f / (1.0f + exp_poly(-x)); }

static inline float tanh_poly(float x) { return 2.0f / (1.0f + exp_poly(-2.0f * x)) - 1.0f; }

/* One row (one sequence of the batch) of each step: restrict pointers, not inlined into the
 * OpenMP loop, so that the compiler vectorises them. */
__attribute__((noinline))
static void forward_row(int64_t hid, const float *restrict p, float *restrict g4,
                        const float *restrict bias, const float *restrict cp, float *restrict cb, float *restrict tb,
                        float *restrict hb) {
    for (int64_t k = 0; k < hid; k++) {
        float i = sigmoid(g4[k] + p[k] + bias[k]);
        float f = sigmoid(g4[hid + k] + p[hid + k] + bias[hid + k]);
        float g = tanh_poly(g4[2 * hid + k] + p[2 * hid + k] + bias[2 * hid + k]);
        float o = sigmoid(g4[3 * hid + k] + p[3 * hid + k] + bias[3 * hid + k]);
        float cn = f * cp[k] + i * g;
        float tc = tanh_poly(cn);
        g4[k] = i;
        g4[hid + k] = f;
        g4[2 * hid + k] = g;
        g4[3 * hid + k] = o;
        cb[k] = cn;
        tb[k] = tc;
        hb[k] = o * tc;
    }
}

__attribute__((noinline))
static void backward_row(int64_t hid, const float *restrict g4, const float *restrict cp,
                         const float *restrict tb, const float *restrict dhb,
                         const float *restrict dyb, float *restrict dcb, float *restrict d4) {
    for (int64_t k = 0; k < hid; k++) {
        float i = g4[k], f = g4[hid + k], g = g4[2 * hid + k], o = g4[3 * hid + k];
        float tc = tb[k];
        float d = dhb[k] + dyb[k];
        float dct = dcb[k] + d * o * (1.0f - tc * tc);
        d4[k] = dct * g * (i - i * i);
        d4[hid + k] = dct * cp[k] * (f - f * f);
        d4[2 * hid + k] = dct * i * (1.0f - g * g);
        d4[3 * hid + k] = d * tc * (o - o * o);
        dcb[k] = dct * f;
    }
}

/* Forward step: gates (B, 4H) holds W_ih x_t on entry (rows i, f, g, o), rec (B, 4H) is
 * W_hh h_{t-1} and bias (4H) is b_ih + b_hh; with c_prev (B, H) -> gates = sigma(i),
 * sigma(f), tanh(g), sigma(o) of the three's sum, kept for backward; c = f c_prev + i g, tanh_c = tanh(c), h = o tanh_c, each
 * (B, H). (Adding here, rather than in the product's epilogue, measured ~100 us a step
 * faster at B 32, H 512.) */
void lstm_forward_step(int64_t batch, int64_t hid, const float *rec, float *gates,
                       const float *bias, const float *c_prev, float *c, float *tanh_c,
                       float *h) {
#pragma omp parallel for schedule(static) if (batch > 1 && batch * hid >= PARALLEL_MIN)
    for (int64_t b = 0; b < batch; b++)
        forward_row(hid, rec + b * 4 * hid, gates + b * 4 * hid, bias, c_prev + b * hid,
                    c + b * hid, tanh_c + b * hid, h + b * hid);
}

/* Backward step, from dh_t = dh + dy (dh carried from step t+1 as delta_{t+1} W_hh; dy, the
 * output's gradient, rows ldy floats apart) and the carried dc:
 * dc_t = dc + dh_t o (1 - tanh^2 c_t); delta = (dc_t g i(1-i), dc_t c_prev f(1-f),
 * dc_t i (1-g^2), dh_t tanh(c_t) o(1-o)) into delta (B, 4H); dc <- dc_t f in place. */
void lstm_backward_step(int64_t batch, int64_t hid, const float *gates, const float *c_prev,
                        const float *tanh_c, const float *dh, const float *dy, int64_t ldy,
                        float *dc, float *delta) {
#pragma omp parallel for schedule(static) if (batch > 1 && batch * hid >= PARALLEL_MIN)
    for (int64_t b = 0; b < batch; b++)
        backward_row(hid, gates + b * 4 * hid, c_prev + b * hid, tanh_c + b * hid,
                     dh + b * hid, dy + b * ldy, dc + b * hid, delta + b * 4 * hid);
}
