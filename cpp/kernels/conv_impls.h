// Internal: the ordered list of convolution implementations (in the style of
// oneDNN's implementation lists). For a shape and a tier, each entry says
// whether it applies and, if not, why not; the first that applies packs the
// weights. The plain reference implementation is last and always applies.
//
// An implementation object holds packed weights only: it depends on the
// layer (channels, kernel, stride, padding, dilation, groups), the tier and
// the microkernel, never on the batch or spatial size, so the kernels of
// several input shapes share it when selection picks the same entry for
// them. run() is const and thread-safe.
//
// Adding an algorithm: write a ConvImpl, add an entry (skip, create) at the
// position where it should win, and it is selected, shared, described and
// tested (tests/cpp/test_conv_impls.cpp runs every entry on every shape it
// accepts).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "kernels/common.h"
#include "kernels/conv.h"

namespace pyflame_vision {
namespace kernels {

class ConvImpl {
 public:
  virtual ~ConvImpl() = default;
  /// out = act(conv(in) + bias + residual) for `s` (a shape this
  /// implementation was created for, at any batch and spatial size it applies to).
  virtual void run(const ConvShape& s, const float* in, float* out, const float* residual, int act) const = 0;
  /// Algorithm and microkernel, e.g. "winograd F(2x2,3x3) igemm_f32_6x16__avx2".
  virtual std::string describe(const ConvShape& s) const = 0;
  /// Multiply-adds executed for `s`; the direct convolution's count by default.
  virtual int64_t macs_executed(const ConvShape& s) const;
  /// Whether its packing is a permutation of the weights (zero padding
  /// aside), so that unpack() gives them back; false for Winograd.
  virtual bool unpacks() const { return false; }
  /// Writes the weights it packed back in torch's layout ([out_c, in_c/groups,
  /// kh, kw], bit for bit). Only called when unpacks().
  virtual void unpack(const ConvShape& s, float* weight) const;
};

/// Multiply-adds of the direct convolution.
int64_t direct_macs(const ConvShape& s);

struct ConvImplEntry {
  const char* name;
  /// What it does, for PYFLAME_VISION_VERBOSE.
  const char* about;
  /// Empty if the entry applies to `s` on tier `uk`; otherwise the reason it does not.
  std::string (*skip)(const ConvShape& s, const UkernelSet& uk);
  /// Packs (weight [out_c, in_c/groups, kh, kw], bias [out_c] or null) for `s` on `uk`.
  std::shared_ptr<const ConvImpl> (*create)(const ConvShape& s, const float* weight, const float* bias,
                                            const UkernelSet& uk);
};

/// The ordered list; the last entry is the reference and always applies.
const std::vector<ConvImplEntry>& conv_impls();

// The entries' functions, one file per algorithm.
std::string skip_dwconv(const ConvShape& s, const UkernelSet& uk);
std::shared_ptr<const ConvImpl> create_dwconv(const ConvShape& s, const float* w, const float* b, const UkernelSet& uk);
std::string skip_gemm_1x1(const ConvShape& s, const UkernelSet& uk);
std::shared_ptr<const ConvImpl> create_gemm_1x1(const ConvShape& s, const float* w, const float* b,
                                                const UkernelSet& uk);
std::string skip_winograd(const ConvShape& s, const UkernelSet& uk);
std::shared_ptr<const ConvImpl> create_winograd(const ConvShape& s, const float* w, const float* b,
                                                const UkernelSet& uk);
std::string skip_igemm_grouped(const ConvShape& s, const UkernelSet& uk);
std::shared_ptr<const ConvImpl> create_igemm_grouped(const ConvShape& s, const float* w, const float* b,
                                                     const UkernelSet& uk);
std::string skip_igemm_rows(const ConvShape& s, const UkernelSet& uk);
std::shared_ptr<const ConvImpl> create_igemm_rows(const ConvShape& s, const float* w, const float* b,
                                                  const UkernelSet& uk);
std::string skip_igemm(const ConvShape& s, const UkernelSet& uk);
std::shared_ptr<const ConvImpl> create_igemm(const ConvShape& s, const float* w, const float* b, const UkernelSet& uk);
std::string skip_ref(const ConvShape& s, const UkernelSet& uk);
std::shared_ptr<const ConvImpl> create_ref(const ConvShape& s, const float* w, const float* b, const UkernelSet& uk);

/// "3x3/s1", "3x3/s2/d2", ... (for descriptions).
std::string geometry(const ConvShape& s);

}  // namespace kernels
}  // namespace pyflame_vision
