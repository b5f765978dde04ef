/* The dot product of one value type on one instruction set, shared by the SGD and the
 * prediction kernels (included by sgd_body.h and predict_body.h, which define T, VT, HSUM,
 * NAME and W). */

/* p . q: two vector accumulators over whole vectors, added in a fixed tree order (HSUM),
 * then the scalar tail. */
MF_INLINE T NAME(mf_dot)(const T *p, const T *q, int64_t k)
{
    int64_t f = 0;
    T s = 0;
#if MF_VECTORS
    if (k >= W) {
        VT a0 = {0}, a1 = {0}, x, y;
        for (; f + 2 * W <= k; f += 2 * W) {
            memcpy(&x, p + f, sizeof x);
            memcpy(&y, q + f, sizeof y);
            a0 += x * y;
            memcpy(&x, p + f + W, sizeof x);
            memcpy(&y, q + f + W, sizeof y);
            a1 += x * y;
        }
        if (f + W <= k) {
            memcpy(&x, p + f, sizeof x);
            memcpy(&y, q + f, sizeof y);
            a0 += x * y;
            f += W;
        }
        s = HSUM(a0 + a1);
    }
#endif
    for (; f < k; f++)
        s += p[f] * q[f];
    return s;
}
