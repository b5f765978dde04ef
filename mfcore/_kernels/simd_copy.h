/* One copy of the body MF_BODY, for simd_paths.h: included with T, VT, HSUM, NAME and
 * MF_TARGET defined (see there), which it undefines after the body. */
#include MF_BODY
#undef T
#undef VT
#undef HSUM
#undef NAME
#undef MF_TARGET
