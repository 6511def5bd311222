// LinearKernel: torch.nn.Linear as one packed GEMM (rows = batch).
#include <string>

#include "kernels/conv.h"
#include "kernels/gemm.h"
#include "pyflame_vision/error.h"

namespace pyflame_vision {
namespace kernels {

struct LinearKernel::Impl {
  size_t in_features = 0, out_features = 0;
  Epilogue epilogue = Epilogue::none;
  std::shared_ptr<const GemmPlan> gemm;
  bool gemv_ok = false;
  Isa isa = Isa::scalar;
};

namespace {
std::shared_ptr<const GemmPlan> pack_linear(size_t in, size_t out, const float* weight, const float* bias,
                                            Isa isa) {
  const UkernelSet& uk = ukernels_for(isa);
  auto p = std::make_shared<GemmPlan>();
  p->ukernel_name = uk.igemm.name;
  p->ukernel = uk.igemm.fn;
  p->mr = uk.igemm.mr;
  p->nr = uk.igemm.nr;
  p->groups = 1;
  p->kc = in;
  p->ks = 1;
  p->n_pg = out;
  p->gemv = uk.gemv;
  p->pack(weight, bias);
  return p;
}

void check_linear(int64_t in_features, int64_t out_features, const float* weight, Isa isa) {
  if (in_features < 1 || out_features < 1) {
    throw InvalidArgument("[linear] expected in_features >= 1 and out_features >= 1, got " +
                          std::to_string(in_features) + " and " + std::to_string(out_features));
  }
  if (weight == nullptr) throw InvalidArgument("[linear] weight is null");
  check_isa(isa, "linear");
}
}  // namespace

LinearKernel::LinearKernel(int64_t in_features, int64_t out_features, const float* weight, const float* bias,
                           Epilogue epilogue, Isa isa)
    : impl_(new Impl) {
  check_linear(in_features, out_features, weight, isa);
  impl_->in_features = static_cast<size_t>(in_features);
  impl_->out_features = static_cast<size_t>(out_features);
  impl_->epilogue = epilogue;
  impl_->isa = isa;
  impl_->gemm = pack_linear(impl_->in_features, impl_->out_features, weight, bias, isa);
  impl_->gemv_ok = impl_->gemm->gemv != nullptr;
}

LinearKernel::LinearKernel(int64_t in_features, int64_t out_features, const float* weight, const float* bias,
                           Epilogue epilogue, Isa isa, PackCache& cache, const std::string& layer_key)
    : impl_(new Impl) {
  check_linear(in_features, out_features, weight, isa);
  impl_->in_features = static_cast<size_t>(in_features);
  impl_->out_features = static_cast<size_t>(out_features);
  impl_->epilogue = epilogue;
  impl_->isa = isa;
  const std::string key = layer_key + "|linear|" + isa_name(isa);
  auto found = std::static_pointer_cast<const GemmPlan>(cache.find(key));
  if (!found)
    found = std::static_pointer_cast<const GemmPlan>(
        cache.put(key, pack_linear(impl_->in_features, impl_->out_features, weight, bias, isa)));
  impl_->gemm = std::move(found);
  impl_->gemv_ok = impl_->gemm->gemv != nullptr;
}

LinearKernel::LinearKernel(const LinearKernel& donor, SharePacked) : impl_(new Impl(*donor.impl_)) {}

LinearKernel::~LinearKernel() = default;

std::string LinearKernel::description() const {
  const std::string row = impl_->gemv_ok ? std::string(" (one row: ") + ukernels_for(impl_->isa).gemv_name + ")" : "";
  return std::string("gemm linear ") + impl_->gemm->ukernel_name + row + epilogue_suffix(impl_->epilogue);
}

namespace {
class LinearPacked final : public PackedWeights {
 public:
  explicit LinearPacked(std::shared_ptr<const GemmPlan> p) : p_(std::move(p)) {}
  size_t size() const override { return p_->kc * p_->n_pg; }
  void unpack(float* weight) const override { p_->unpack(weight, p_->kc, 1); }
  const void* id() const override { return p_.get(); }

 private:
  std::shared_ptr<const GemmPlan> p_;
};
}  // namespace

std::shared_ptr<const PackedWeights> LinearKernel::packed_weights() const {
  return std::make_shared<LinearPacked>(impl_->gemm);
}

void LinearKernel::run(const float* x, int64_t rows, float* y) const {
  if (rows < 0) throw InvalidArgument("[linear] expected rows >= 0, got " + std::to_string(rows));
  if (rows == 0) return;
  const Impl& m = *impl_;
  if (rows == 1 && m.gemv_ok) {  // batch 1: the classifier as a GEMV (bit-identical to the GEMM's row)
    m.gemm->run_row(x, y, ukernel_act(m.epilogue));
    return;
  }
  const size_t K = m.in_features;
  auto row_ptrs = [&](size_t, size_t m0, size_t mr, const float** ptrs, float*) {
    for (size_t i = 0; i < mr; ++i) ptrs[i] = x + (m0 + i) * K;
  };
  m.gemm->run(static_cast<size_t>(rows), row_ptrs, y, m.out_features, nullptr, ukernel_act(m.epilogue));
}

}  // namespace kernels
}  // namespace pyflame_vision
