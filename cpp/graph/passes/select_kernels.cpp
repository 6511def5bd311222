// Pass 4: one kernel per operator (one switch over OpKind). Convolutions
// choose from the ordered implementation list for this shape and tier
// (kernels/conv_impls.h) and share packed weights through the PackCache with
// every other shape that chooses the same implementation; the BatchNorm
// folding arithmetic runs only when weights must be packed.
#include <cmath>
#include <functional>
#include <stdexcept>

#include "graph/program.h"
#include "kernels/eltwise.h"
#include "pyflame_vision/error.h"

namespace pyflame_vision {
namespace passes {

namespace {

using kernels::Epilogue;

std::string key_of(const Node& n, const char* name) { return n.path.empty() ? std::string(name) : n.path + "." + name; }

Tensor weight(const WeightStore& weights, const Node& n, const char* name) {
  const std::string key = key_of(n, name);
  Tensor t = weights.get(key);
  if (!t.defined())
    throw WeightsError("the model has no value for '" + key +
                       "': call init_weights(seed) or load_state_dict() / load_weights() first");
  return t;
}

// BatchNorm as y = x * scale + shift, in double: scale = g / sqrt(v + eps),
// shift = beta - mean * scale (the only place this arithmetic is written).
struct ScaleShift {
  std::vector<double> scale, shift;
};
ScaleShift batchnorm_scale_shift(const WeightStore& weights, const Node& bn) {
  const auto& layer = static_cast<const nn::BatchNorm2d&>(*bn.layer);
  const int64_t c = layer.num_features();
  const Tensor tg = weight(weights, bn, "weight"), tb = weight(weights, bn, "bias");
  const Tensor tm = weight(weights, bn, "running_mean"), tv = weight(weights, bn, "running_var");
  const float* g = tg.data_f32();
  const float* beta = tb.data_f32();
  const float* mean = tm.data_f32();
  const float* var = tv.data_f32();
  ScaleShift s;
  for (int64_t i = 0; i < c; ++i) {
    const double sc = static_cast<double>(g[i]) / std::sqrt(static_cast<double>(var[i]) + layer.eps());
    s.scale.push_back(sc);
    s.shift.push_back(static_cast<double>(beta[i]) - static_cast<double>(mean[i]) * sc);
  }
  return s;
}

struct ConvStep final : Step {
  std::unique_ptr<kernels::Conv2dKernel> k;
  void run(const float* const* in, float* out) const override { k->run(in[0], out, inputs.size() > 1 ? in[1] : nullptr); }
};

struct LinearStep final : Step {
  std::unique_ptr<kernels::LinearKernel> k;
  int64_t rows = 0;
  void run(const float* const* in, float* out) const override { k->run(in[0], rows, out); }
};

// The remaining operators: a kernel call on NHWC buffers.
struct CallStep final : Step {
  std::function<void(const float* const*, float*)> fn;
  void run(const float* const* in, float* out) const override { fn(in, out); }
};

std::unique_ptr<Step> conv_step(const Program& p, const Op& op, WeightStore& weights, Isa isa,
                                kernels::PackCache& packs) {
  const auto& o = static_cast<const nn::Conv2d&>(*op.node->layer).options();
  const Value& in = p.values[static_cast<size_t>(op.inputs[0])];
  const Value& out = p.values[static_cast<size_t>(op.output)];
  kernels::ConvShape cs;
  cs.batch = in.n;
  cs.in_h = in.h, cs.in_w = in.w, cs.in_c = in.c;
  cs.out_h = out.h, cs.out_w = out.w, cs.out_c = out.c;
  cs.kernel_h = o.kernel_size_.h, cs.kernel_w = o.kernel_size_.w;
  cs.stride_h = o.stride_.h, cs.stride_w = o.stride_.w;
  cs.pad_h = o.padding_.h, cs.pad_w = o.padding_.w;
  cs.dilation_h = o.dilation_.h, cs.dilation_w = o.dilation_.w;
  cs.groups = o.groups_;
  const Node& node = *op.node;
  const Node* bn = op.bn;
  auto source = [&]() {
    kernels::ConvWeights w;
    {
      const Tensor wt = weight(weights, node, "weight");
      w.weight.assign(wt.data_f32(), wt.data_f32() + wt.numel());
    }
    if (!o.bias_ && bn == nullptr) return w;
    w.bias.assign(static_cast<size_t>(o.out_channels_), 0.0f);
    if (o.bias_) {
      const Tensor tb = weight(weights, node, "bias");
      std::copy(tb.data_f32(), tb.data_f32() + o.out_channels_, w.bias.begin());
    }
    if (bn != nullptr) {
      // W' = W * scale, b' = b * scale + shift.
      const ScaleShift ss = batchnorm_scale_shift(weights, *bn);
      const size_t per = w.weight.size() / static_cast<size_t>(o.out_channels_);
      for (size_t c = 0; c < static_cast<size_t>(o.out_channels_); ++c) {
        for (size_t i = 0; i < per; ++i)
          w.weight[c * per + i] = static_cast<float>(static_cast<double>(w.weight[c * per + i]) * ss.scale[c]);
        w.bias[c] = static_cast<float>(static_cast<double>(w.bias[c]) * ss.scale[c] + ss.shift[c]);
      }
    }
    return w;
  };
  auto s = std::make_unique<ConvStep>();
  s->k = std::make_unique<kernels::Conv2dKernel>(cs, op.epilogue, isa, packs, op.label, source);
  s->algo = s->k->description();
  s->why = s->k->why();
  s->macs = s->k->macs_executed();
  // Weights once: the packed copy (W * the folded BatchNorm scale) gives the
  // weight back, so the store drops its resident copy where it rebuilds exactly.
  if (auto packed = s->k->packed_weights())
    weights.derive(key_of(node, "weight"), std::move(packed),
                   bn != nullptr ? batchnorm_scale_shift(weights, *bn).scale : std::vector<double>());
  return s;
}

std::unique_ptr<Step> linear_step(const Program& p, const Op& op, WeightStore& weights, Isa isa,
                                  kernels::PackCache& packs) {
  const auto& lin = static_cast<const nn::Linear&>(*op.node->layer);
  const Node& node = *op.node;
  const Value& in = p.values[static_cast<size_t>(op.inputs[0])];
  if (in.h * in.w != 1) throw Unsupported("[linear] " + node.path + ": the engine runs Linear on [N, F] inputs");
  auto s = std::make_unique<LinearStep>();
  {
    const Tensor w = weight(weights, node, "weight");
    // Linear's bias flag is private; the state dict tells whether it exists.
    const Tensor tb = weights.has(node.path + ".bias") ? weight(weights, node, "bias") : Tensor();
    s->k = std::make_unique<kernels::LinearKernel>(lin.in_features(), lin.out_features(), w.data_f32(),
                                                   tb.defined() ? tb.data_f32() : nullptr, op.epilogue, isa, packs,
                                                   op.label);
  }
  weights.derive(key_of(node, "weight"), s->k->packed_weights(), {});
  s->rows = in.n;
  s->macs = in.n * lin.in_features() * lin.out_features();
  s->algo = s->k->description();
  return s;
}

Epilogue activation_of(const nn::Layer& l) {
  switch (static_cast<const nn::ActivationLayer&>(l).kind()) {
    case nn::Activation::ReLU: return Epilogue::relu;
    case nn::Activation::SiLU: return Epilogue::silu;
    case nn::Activation::Sigmoid: return Epilogue::sigmoid;
  }
  return Epilogue::none;
}

std::unique_ptr<Step> other_step(const Program& p, const Op& op, const WeightStore& weights, Isa isa) {
  const kernels::UkernelSet& uk = kernels::ukernels_for(isa);
  const Value& out = p.values[static_cast<size_t>(op.output)];
  const Value& in = p.values[static_cast<size_t>(op.inputs[0])];
  const Node& node = *op.node;
  auto s = std::make_unique<CallStep>();
  const int64_t n = out.floats();
  switch (op.kind) {
    case OpKind::batchnorm: {
      const ScaleShift ss = batchnorm_scale_shift(weights, node);
      std::vector<float> scale(ss.scale.begin(), ss.scale.end()), shift(ss.shift.begin(), ss.shift.end());
      const int64_t rows = out.n * out.h * out.w, c = out.c;
      s->fn = [rows, c, scale, shift](const float* const* x, float* y) {
        kernels::scale_shift(rows, c, x[0], scale.data(), shift.data(), y);
      };
      s->algo = "batchnorm (scale and shift)";
      break;
    }
    case OpKind::activation: {
      const Epilogue e = activation_of(*node.layer);
      s->fn = [&uk, n, e](const float* const* x, float* y) { kernels::activation(uk, n, x[0], y, e); };
      s->algo = std::string("elementwise ") + node.layer->op_name() + " vact_f32__" + isa_name(isa);
      break;
    }
    case OpKind::add:
      s->fn = [&uk, n](const float* const* x, float* y) { kernels::add(uk, n, x[0], x[1], y, Epilogue::none); };
      s->algo = std::string("elementwise add vadd_f32__") + isa_name(isa);
      break;
    case OpKind::mul: {
      const Value& a = in;
      const Value& b = p.values[static_cast<size_t>(op.inputs[1])];
      if (a.shape == b.shape) {
        s->fn = [&uk, n](const float* const* x, float* y) { kernels::mul(uk, n, x[0], x[1], y); };
        s->algo = std::string("elementwise mul vmul_f32__") + isa_name(isa);
        break;
      }
      int scale_input = -1;
      if (a.h * a.w == 1 && a.shape.size() == 4 && a.n == out.n && a.c == out.c) scale_input = 0;
      if (b.h * b.w == 1 && b.shape.size() == 4 && b.n == out.n && b.c == out.c) scale_input = 1;
      if (scale_input < 0)
        throw Unsupported("[mul] " + node.path + ": the engine multiplies equal shapes or [N, C, 1, 1] scales, got " +
                          shape_to_string(a.shape) + " and " + shape_to_string(b.shape));
      const int64_t batch = out.n, hw = out.h * out.w, c = out.c;
      s->fn = [&uk, batch, hw, c, scale_input](const float* const* x, float* y) {
        kernels::channel_scale(uk, batch, hw, c, x[1 - scale_input], x[scale_input], y);
      };
      s->algo = std::string("channel scale vmul_f32__") + isa_name(isa);
      break;
    }
    case OpKind::max_pool: {
      const auto& mp = static_cast<const nn::MaxPool2d&>(*node.layer);
      kernels::PoolShape ps;
      ps.n = in.n, ps.ih = in.h, ps.iw = in.w, ps.c = in.c, ps.oh = out.h, ps.ow = out.w;
      ps.kh = mp.kernel_size().h, ps.kw = mp.kernel_size().w, ps.sh = mp.stride().h, ps.sw = mp.stride().w;
      ps.ph = mp.padding().h, ps.pw = mp.padding().w, ps.dh = mp.dilation().h, ps.dw = mp.dilation().w;
      s->fn = [&uk, ps](const float* const* x, float* y) { kernels::max_pool(uk, ps, x[0], y); };
      s->algo = std::string("max pool vmax_f32__") + isa_name(isa);
      break;
    }
    case OpKind::avg_pool: {
      kernels::PoolShape ps;
      ps.n = in.n, ps.ih = in.h, ps.iw = in.w, ps.c = in.c, ps.oh = out.h, ps.ow = out.w;
      s->fn = [&uk, ps](const float* const* x, float* y) { kernels::adaptive_avg_pool(uk, ps, x[0], y); };
      s->algo = ps.oh == 1 && ps.ow == 1 ? std::string("global average pool gavgpool_f32__") + isa_name(isa)
                                         : std::string("adaptive average pool");
      break;
    }
    case OpKind::flatten: {
      if (in.shape.size() != 4 || out.shape.size() != 2)
        throw Unsupported("[flatten] " + node.path + ": the engine flattens [N, C, H, W] to [N, C*H*W] only");
      const int64_t bn = in.n, h = in.h, w = in.w, c = in.c;
      s->fn = [bn, h, w, c](const float* const* x, float* y) { kernels::nhwc_to_nchw(bn, h, w, c, x[0], y); };
      s->algo = "flatten (NHWC to CHW order)";
      break;
    }
    case OpKind::conv:
    case OpKind::linear:
    case OpKind::identity:
      throw std::logic_error("other_step: not an elementwise operator");
  }
  return s;
}

}  // namespace

std::vector<std::unique_ptr<Step>> select_kernels(const Program& p, WeightStore& weights, Isa isa,
                                                  kernels::PackCache& packs) {
  std::vector<std::unique_ptr<Step>> steps;
  for (const Op& op : p.ops) {
    std::unique_ptr<Step> s;
    switch (op.kind) {
      case OpKind::conv: s = conv_step(p, op, weights, isa, packs); break;
      case OpKind::linear: s = linear_step(p, op, weights, isa, packs); break;
      default: s = other_step(p, op, weights, isa); break;
    }
    s->inputs = op.inputs;
    s->output = op.output;
    s->label = op.label;
    steps.push_back(std::move(s));
  }
  return steps;
}

}  // namespace passes
}  // namespace pyflame_vision
