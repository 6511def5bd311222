// Internal: the non-convolution operators on NHWC buffers (elementwise and
// layout in eltwise.cpp, pooling in pool.cpp), each split into a fixed grid of row tasks (never a
// function of the thread count) and run on the tier's microkernels where
// vectors pay: activation, add, multiply, max and global average pooling.
// All functions are thread-safe; outputs must not alias inputs unless noted.
#pragma once

#include <cstdint>

#include "kernels/common.h"

namespace pyflame_vision {
namespace kernels {

/// y = act(x) over n floats (y may alias x).
void activation(const UkernelSet& uk, int64_t n, const float* x, float* y, Epilogue act);
/// y = act(a + b) over n floats (y may alias a or b).
void add(const UkernelSet& uk, int64_t n, const float* a, const float* b, float* y, Epilogue act);
/// y = a * b over n floats.
void mul(const UkernelSet& uk, int64_t n, const float* a, const float* b, float* y);
/// y[n, p, c] = x[n, p, c] * s[n, c] for p < hw (squeeze-excitation scaling).
void channel_scale(const UkernelSet& uk, int64_t batch, int64_t hw, int64_t c, const float* x, const float* s,
                   float* y);
/// y[r, c] = x[r, c] * scale[c] + shift[c] (a BatchNorm that follows no convolution).
void scale_shift(int64_t rows, int64_t c, const float* x, const float* scale, const float* shift, float* y);

struct PoolShape {
  int64_t n = 0, ih = 0, iw = 0, c = 0, oh = 0, ow = 0;
  int64_t kh = 1, kw = 1, sh = 1, sw = 1, ph = 0, pw = 0, dh = 1, dw = 1;
};
/// torch.nn.MaxPool2d (padding never wins; NaN wins and then stays).
void max_pool(const UkernelSet& uk, const PoolShape& s, const float* x, float* y);
/// torch.nn.AdaptiveAvgPool2d: window [floor(i*in/out), ceil((i+1)*in/out)).
void adaptive_avg_pool(const UkernelSet& uk, const PoolShape& s, const float* x, float* y);

/// NCHW with any element strides -> dense NHWC [n, h, w, c].
void nchw_to_nhwc(int64_t n, int64_t c, int64_t h, int64_t w, const float* x, const int64_t strides[4], float* y);
/// Dense NHWC -> dense NCHW.
void nhwc_to_nchw(int64_t n, int64_t h, int64_t w, int64_t c, const float* x, float* y);

}  // namespace kernels
}  // namespace pyflame_vision
