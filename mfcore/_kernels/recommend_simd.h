/* Scores of MF_REC_G queries against a block of items, for the top-N kernel.
 *
 *   out[g][j] = bias[start + j] + sum_f x[g][f] * item(start + j)[f]     (j < len)
 *
 * Item factors come packed in panels of MF_REC_PANEL items: panel p holds
 * items p*PANEL .. p*PANEL+PANEL-1 as a k x PANEL item-contiguous array
 * (zero-padded at the end), so one panel (k=64: 8 KiB of floats) stays in L1
 * while a register tile of G queries x 2 vectors of items walks through it.
 * Each score adds its k terms in order f = 0..k-1, like a plain dot product
 * (paths differ only by FMA contraction and vector width).
 *
 * Written once, in recommend_body.h, with GCC/Clang vector extensions, and compiled
 * per instruction set: portable (16-byte vectors: SSE2 or NEON), AVX2+FMA and
 * AVX-512 on x86, the copy of the path selected in simd_dispatch.h running each call.
 */
#ifndef MFCORE_RECOMMEND_SIMD_H
#define MFCORE_RECOMMEND_SIMD_H

#include <stdint.h>
#include <string.h>
#include "mf_common.h"
#include "simd_dispatch.h"

#define MF_REC_G 4        /* queries scored together */
#define MF_REC_PANEL 32   /* items per packed panel; start must be a multiple of it */

/* --- the kernel: recommend_body.h for each value type on each path (simd_paths.h) --- */

#define MF_BODY "recommend_body.h"
#include "simd_paths.h"
#undef MF_BODY

/* --- the selected path's copy --- */

#define mf_rec_scores_f32 MF_FOR_PATH(mf_path(), mf_rec_f32)
#define mf_rec_scores_f64 MF_FOR_PATH(mf_path(), mf_rec_f64)


#endif
