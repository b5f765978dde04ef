/* Prediction and the sum of squared errors, for every estimator, compiled once per
 * instruction set and chosen at run time.
 *
 *   prediction(u, i) = mu + b_u + b_i + p_u . q_i, clipped to [lo, hi]
 *
 * an index of -1 (an id the model does not know) contributing no bias and no factors.
 * Written once, in predict_body.h (its dot product is dot_body.h's, the SGD kernel's), and
 * compiled for float and double on each path, as sgd_simd.h does; mf_predict_select()
 * switches both types to a path the CPU supports.
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

/* --- the path in use --- */

typedef double (*mf_predict_fn_f32)(const int32_t *, const int32_t *, const float *, int64_t,
                                    const float *, const float *, const float *,
                                    const float *, int64_t, float, float, float, float *);
typedef double (*mf_predict_fn_f64)(const int32_t *, const int32_t *, const double *, int64_t,
                                    const double *, const double *, const double *,
                                    const double *, int64_t, double, double, double,
                                    double *);
static mf_predict_fn_f32 mf_predict_range_f32 = mf_predict_f32_baseline;
static mf_predict_fn_f64 mf_predict_range_f64 = mf_predict_f64_baseline;
static int mf_predict_path = MF_PATH_BASELINE;

/* Predict with path `path` (MF_PATH_*); returns 0 if it is not supported (nothing
 * changes). mfcore.simd sets every kernel module to one path. */
static int mf_predict_select(int path)
{
    if (!mf_path_supported(path))
        return 0;
    mf_predict_range_f32 = MF_FOR_PATH(path, mf_predict_f32);
    mf_predict_range_f64 = MF_FOR_PATH(path, mf_predict_f64);
    mf_predict_path = path;
    return 1;
}

static int mf_predict_get_path(void)
{
    return mf_predict_path;
}

#endif
