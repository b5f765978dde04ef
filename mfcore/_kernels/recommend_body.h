/* The top-N scoring kernel for one value type on one instruction set.
 *
 * simd_paths.h includes this file once per value type and path, with T, VT, NAME and
 * MF_TARGET defined (see there). The panel helper is always inlined into the
 * entry point NAME(mf_rec), which carries MF_TARGET. Without GCC/Clang vector extensions
 * (MF_VECTORS 0) the panel is scored with scalar loops.
 */

#define W ((int)(sizeof(VT) / sizeof(T))) /* lanes of a VT */

/* One panel: out[g][c] = sum_f x[g][f] * panel[f][c] for the MF_REC_G queries and the
 * MF_REC_PANEL items of the panel, in register tiles of MF_REC_G queries x 2W items. */
MF_INLINE void NAME(mf_rec_panel)(const T *const *x, const T *panel, int64_t k,
                                      T *const *out)
{
    int64_t c, f;
    int g;
#if MF_VECTORS
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
