/* Prediction and the sum of squared errors, for every estimator, compiled once per
 * instruction set and chosen at run time.
 *
 *   prediction(u, i) = mu + b_u + b_i + p_u . q_i, clipped to [lo, hi]
 *
 * an index of -1 (an id the model does not know) contributing no bias and no factors.
 * Written once, in predict_body.h (its dot product is dot_body.h's, the SGD kernel's), and
 * compiled for float and double on each path, as sgd_simd.h does; each call runs the
 * copy of the path selected in simd_dispatch.h.
 */
#ifndef MFCORE_PREDICT_SIMD_H
#define MFCORE_PREDICT_SIMD_H

#include <stdint.h>
#include <string.h>
#include "mf_common.h"
#include "simd_dispatch.h"

#define MF_BODY "predict_body.h"
#include "simd_paths.h"
#undef MF_BODY

/* --- the selected path's copy --- */

#define mf_predict_range_f32 MF_FOR_PATH(mf_path(), mf_predict_f32)
#define mf_predict_range_f64 MF_FOR_PATH(mf_path(), mf_predict_f64)


#endif
