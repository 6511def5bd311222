#include "kernels/conv_impls.h"

#include <sstream>
#include <stdexcept>

namespace pyflame_vision {
namespace kernels {

int64_t direct_macs(const ConvShape& s) {
  return s.batch * s.out_h * s.out_w * s.out_c * (s.in_c / s.groups) * s.kernel_h * s.kernel_w;
}

int64_t ConvImpl::macs_executed(const ConvShape& s) const { return direct_macs(s); }

void ConvImpl::unpack(const ConvShape&, float*) const {
  throw std::logic_error("ConvImpl::unpack: this implementation's packing is not a permutation");
}

std::string geometry(const ConvShape& s) {
  std::ostringstream os;
  os << s.kernel_h << "x" << s.kernel_w << "/s" << s.stride_h;
  if (s.stride_w != s.stride_h) os << "x" << s.stride_w;
  if (s.dilation_h != 1 || s.dilation_w != 1) {
    os << "/d" << s.dilation_h;
    if (s.dilation_w != s.dilation_h) os << "x" << s.dilation_w;
  }
  return os.str();
}

// The order is the preference: specialised algorithms first, the general
// implicit GEMM, then the reference.
const std::vector<ConvImplEntry>& conv_impls() {
  static const std::vector<ConvImplEntry> list = {
      {"dwconv", "depthwise: channels vectorised, several pixels per weight load", skip_dwconv, create_dwconv},
      {"gemm_1x1", "1x1, stride 1, no padding: a plain GEMM over the NHWC rows", skip_gemm_1x1, create_gemm_1x1},
      {"winograd_2x2_3x3",
       "Winograd F(2x2,3x3): 16 GEMMs over 2x2 output tiles, 2.25x fewer multiplies (PYFLAME_VISION_WINOGRAD=0 "
       "disables)",
       skip_winograd, create_winograd},
      {"igemm_grouped", "several groups per register tile, every lane busy", skip_igemm_grouped,
       create_igemm_grouped},
      {"igemm_rows", "few input channels: each kernel row's taps merge into one reduction", skip_igemm_rows,
       create_igemm_rows},
      {"igemm", "implicit GEMM per group with an indirection buffer (padding taps read a zero row)", skip_igemm,
       create_igemm},
      {"ref", "reference loops", skip_ref, create_ref},
  };
  return list;
}

}  // namespace kernels
}  // namespace pyflame_vision
