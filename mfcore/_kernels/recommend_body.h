/* The top-N scoring kernel for one value type on one instruction set.
 *
 * recommend_simd.h includes this file six times, float and double on each of the
 * baseline, AVX2 and AVX-512 paths, after defining
 *
 *   T          the value type: float or double
 *   VT         a vector of T of the path's register width (16, 32 or 64 bytes)
 *   NAME(x)    x with this copy's suffix, e.g. mf_rec_f32_avx2
 *   MF_TARGET  this copy's instruction set: __attribute__((target(...))), or nothing
 *
 * and this file undefines them at its end. The panel helper is always inlined into the
 * entry point NAME(mf_rec), which carries MF_TARGET. Without GCC/Clang vector extensions
 * (MF_REC_VECTORS 0) the panel is scored with scalar loops.
 */

#define W ((int)(sizeof(VT) / sizeof(T))) /* lanes of a VT */

/* One panel: out[g][c] = sum_f x[g][f] * panel[f][c] for the MF_REC_G queries and the
 * MF_REC_PANEL items of the panel, in register tiles of MF_REC_G queries x 2W items. */
MF_REC_INLINE void NAME(mf_rec_panel)(const T *const *x, const T *panel, int64_t k,
                                      T *const *out)
{
    int64_t c, f;
    int g;
#if MF_REC_VECTORS
    for (c = 0; c < MF_REC_PANEL; c += 2 * W) {
        VT a[MF_REC_G][2];
        for (g = 0; g < MF_REC_G; g++) {
            a[g][0] = (VT){0};
            a[g][1] = (VT){0};
        }
        for (f = 0; f < k; f++) {
            VT q0, q1;
            memcpy(&q0, panel + f * MF_REC_PANEL + c, sizeof(VT));
            memcpy(&q1, panel + f * MF_REC_PANEL + c + W, sizeof(VT));
            for (g = 0; g < MF_REC_G; g++) {
                T xs = x[g][f];
                a[g][0] += xs * q0;
                a[g][1] += xs * q1;
            }
        }
        for (g = 0; g < MF_REC_G; g++) {
            memcpy(out[g] + c, &a[g][0], sizeof(VT));
            memcpy(out[g] + c + W, &a[g][1], sizeof(VT));
        }
    }
#else
    for (g = 0; g < MF_REC_G; g++) {
        for (c = 0; c < MF_REC_PANEL; c++) {
            T s = 0;
            for (f = 0; f < k; f++)
                s += x[g][f] * panel[f * MF_REC_PANEL + c];
            out[g][c] = s;
        }
    }
#endif
}

/* Scores of the MF_REC_G queries x against items start .. start+len-1: every panel of
 * the block, then the item bias (see recommend_simd.h). */
MF_TARGET static void NAME(mf_rec)(const T *const *x, const T *packed, int64_t k,
                                   int64_t start, int64_t len, const T *bias, T *const *out)
{
    int64_t p, j;
    int g;
    T *o[MF_REC_G];
    for (p = 0; p * MF_REC_PANEL < len; p++) {
        for (g = 0; g < MF_REC_G; g++)
            o[g] = out[g] + p * MF_REC_PANEL;
        NAME(mf_rec_panel)(x, packed + (start + p * MF_REC_PANEL) * k, k, o);
    }
    for (g = 0; g < MF_REC_G; g++)
        for (j = 0; j < len; j++)
            out[g][j] += bias[start + j];
}

#undef W
#undef T
#undef VT
#undef NAME
#undef MF_TARGET
