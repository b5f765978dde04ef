/* The prediction kernel for one value type on one instruction set.
 *
 * simd_paths.h includes this file once per value type and path, with T, VT, HSUM, NAME and
 * MF_TARGET defined (see there). The helpers (MF_INLINE) are inlined into the entry point
 * NAME(mf_predict), which carries MF_TARGET.
 */

#define W ((int)(sizeof(VT) / sizeof(T))) /* lanes of a VT */

#include "dot_body.h" /* NAME(mf_dot): p . q, as the SGD kernel computes it */

/* Prediction for one pair; an index of -1 contributes nothing; clipped to [lo, hi]. */
MF_INLINE T NAME(mf_predict_one)(int32_t u, int32_t i, const T *P, const T *Q,
                                 const T *bu, const T *bi, int64_t k,
                                 T mu, T lo, T hi)
{
    T r = mu;
    if (u >= 0)
        r += bu[u];
    if (i >= 0)
        r += bi[i];
    if (u >= 0 && i >= 0)
        r += NAME(mf_dot)(P + (int64_t)u * k, Q + (int64_t)i * k, k);
    return r < lo ? lo : (r > hi ? hi : r);
}

/* Predictions for n pairs into out; or (out NULL) the sum of squared errors against r. */
MF_INLINE double NAME(mf_predict_inline)(const int32_t *us, const int32_t *is, const T *r,
                                         int64_t n, const T *P, const T *Q, const T *bu,
                                         const T *bi, int64_t k, T mu, T lo, T hi, T *out)
{
    double sse = 0.0;
    for (int64_t t = 0; t < n; t++) {
        T p = NAME(mf_predict_one)(us[t], is[t], P, Q, bu, bi, k, mu, lo, hi);
        if (out) {
            out[t] = p;
        } else {
            double e = (double)r[t] - (double)p;
            sse += e * e;
        }
    }
    return sse;
}

/* --- the entry point of this copy --- */

MF_TARGET static double NAME(mf_predict)(const int32_t *us, const int32_t *is, const T *r,
                                         int64_t n, const T *P, const T *Q, const T *bu,
                                         const T *bi, int64_t k, T mu, T lo, T hi, T *out)
{
    return NAME(mf_predict_inline)(us, is, r, n, P, Q, bu, bi, k, mu, lo, hi, out);
}

#undef W
