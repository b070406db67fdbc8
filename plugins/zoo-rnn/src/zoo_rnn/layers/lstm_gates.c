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

/* Forward step: pre (B, 4H) = W_hh h_{t-1} + W_ih x_t + b (rows i, f, g, o) and c_prev (B, H)
 * -> gates (B, 4H) = sigma(i), sigma(f), tanh(g), sigma(o), kept for backward;
 * c = f c_prev + i g, tanh_c = tanh(c), h = o tanh_c, each (B, H). */
void lstm_forward_step(int64_t batch, int64_t hid, const float *restrict pre,
                       float *restrict gates, const float *restrict c_prev,
                       float *restrict c, float *restrict tanh_c, float *restrict h) {
    for (int64_t b = 0; b < batch; b++) {
        const float *p = pre + b * 4 * hid;
        float *g4 = gates + b * 4 * hid;
        const float *cp = c_prev + b * hid;
        float *cb = c + b * hid, *tb = tanh_c + b * hid, *hb = h + b * hid;
        for (int64_t k = 0; k < hid; k++) {
            float i = sigmoid(p[k]), f = sigmoid(p[hid + k]);
            float g = tanh_poly(p[2 * hid + k]), o = sigmoid(p[3 * hid + k]);
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
}

/* Backward step, from dh_t = dh + dy (dh carried from step t+1 as delta_{t+1} W_hh; dy, the
 * output's gradient, may be NULL) and the carried dc:
 * dc_t = dc + dh_t o (1 - tanh^2 c_t); delta = (dc_t g i(1-i), dc_t c_prev f(1-f),
 * dc_t i (1-g^2), dh_t tanh(c_t) o(1-o)) into delta (B, 4H); dc <- dc_t f in place. */
void lstm_backward_step(int64_t batch, int64_t hid, const float *restrict gates,
                        const float *restrict c_prev, const float *restrict tanh_c,
                        const float *restrict dh, const float *restrict dy, int64_t ldy,
                        float *restrict dc, float *restrict delta) {
    for (int64_t b = 0; b < batch; b++) {
        const float *g4 = gates + b * 4 * hid;
        const float *cp = c_prev + b * hid, *tb = tanh_c + b * hid, *dhb = dh + b * hid;
        const float *dyb = dy ? dy + b * ldy : 0;
        float *dcb = dc + b * hid, *d4 = delta + b * 4 * hid;
        for (int64_t k = 0; k < hid; k++) {
            float i = g4[k], f = g4[hid + k], g = g4[2 * hid + k], o = g4[3 * hid + k];
            float tc = tb[k];
            float d = dyb ? dhb[k] + dyb[k] : dhb[k];
            float dct = dcb[k] + d * o * (1.0f - tc * tc);
            d4[k] = dct * g * (i - i * i);
            d4[hid + k] = dct * cp[k] * (f - f * f);
            d4[2 * hid + k] = dct * i * (1.0f - g * g);
            d4[3 * hid + k] = d * tc * (o - o * o);
            dcb[k] = dct * f;
        }
    }
}
