#include "graph/executable.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <new>

#include "core/thread_pool.h"
#include "kernels/conv.h"
#include "pyflame_vision/error.h"
#include "pyflame_vision/nn/layers.h"

namespace pyflame_vision {

using kernels::Epilogue;

// ---------------------------------------------------------------- steps
// A step reads its inputs and writes its output, all NHWC buffers in the arena.
struct Executable::Step {
  virtual ~Step() = default;
  virtual void run(const float* const* in, float* out) const = 0;
  std::vector<int> inputs;  // value ids (resolved)
  int output = -1;
  std::string label;  // node paths, e.g. "layer1.0.conv1+bn1+relu"
  std::string algo;
  std::string why;  // for PYFLAME_VISION_VERBOSE
};

namespace {

// Rows of `rows` x `cols` processed in parallel chunks of whole rows.
template <typename F>
void parallel_rows(int64_t rows, int64_t cols, F&& f) {
  if (rows <= 0) return;
  const int64_t target = 1 << 15;  // elements per task: large enough to amortise dispatch
  int64_t per = std::max<int64_t>(1, target / std::max<int64_t>(cols, 1));
  const int64_t tasks = (rows + per - 1) / per;
  auto body = [&](size_t t) {
    const int64_t r0 = static_cast<int64_t>(t) * per, r1 = std::min(rows, r0 + per);
    for (int64_t r = r0; r < r1; ++r) f(r);
  };
  detail::parallel_for(static_cast<size_t>(tasks), detail::TaskFn(body));
}

inline float relu_f(float x) { return std::isnan(x) ? x : (x > 0.0f ? x : 0.0f); }
inline float sigmoid_f(float x) { return 1.0f / (1.0f + std::exp(-x)); }
inline float silu_f(float x) { return x / (1.0f + std::exp(-x)); }

float apply_act(nn::Activation a, float x) {
  switch (a) {
    case nn::Activation::ReLU: return relu_f(x);
    case nn::Activation::SiLU: return silu_f(x);
    case nn::Activation::Sigmoid: return sigmoid_f(x);
  }
  return x;
}

Epilogue epilogue_of(nn::Activation a) {
  switch (a) {
    case nn::Activation::ReLU: return Epilogue::relu;
    case nn::Activation::SiLU: return Epilogue::silu;
    case nn::Activation::Sigmoid: return Epilogue::sigmoid;
  }
  return Epilogue::none;
}

const char* act_name(nn::Activation a) {
  switch (a) {
    case nn::Activation::ReLU: return "relu";
    case nn::Activation::SiLU: return "silu";
    case nn::Activation::Sigmoid: return "sigmoid";
  }
  return "?";
}

struct ConvStep : Executable::Step {
  std::unique_ptr<kernels::Conv2dKernel> k;
  bool has_residual = false;
  void run(const float* const* in, float* out) const override {
    k->run(in[0], out, has_residual ? in[1] : nullptr);
  }
};

struct LinearStep : Executable::Step {
  std::unique_ptr<kernels::LinearKernel> k;
  int64_t rows = 0;
  void run(const float* const* in, float* out) const override { k->run(in[0], rows, out); }
};

// y = x * scale[c] + shift[c] (a BatchNorm that follows no convolution).
struct ScaleShiftStep : Executable::Step {
  std::vector<float> scale, shift;
  int64_t rows = 0, c = 0;
  void run(const float* const* in, float* out) const override {
    const float* x = in[0];
    parallel_rows(rows, c, [&](int64_t r) {
      for (int64_t j = 0; j < c; ++j) out[r * c + j] = x[r * c + j] * scale[j] + shift[j];
    });
  }
};

struct ActStep : Executable::Step {
  nn::Activation act = nn::Activation::ReLU;
  int64_t rows = 0, c = 0;
  void run(const float* const* in, float* out) const override {
    const float* x = in[0];
    parallel_rows(rows, c, [&](int64_t r) {
      for (int64_t j = 0; j < c; ++j) out[r * c + j] = apply_act(act, x[r * c + j]);
    });
  }
};

struct AddStep : Executable::Step {
  int64_t rows = 0, c = 0;
  void run(const float* const* in, float* out) const override {
    const float *a = in[0], *b = in[1];
    parallel_rows(rows, c, [&](int64_t r) {
      for (int64_t j = 0; j < c; ++j) out[r * c + j] = a[r * c + j] + b[r * c + j];
    });
  }
};

// x [N, H, W, C] times s [N, 1, 1, C] (squeeze-excitation) or times an equal-shaped s.
struct MulStep : Executable::Step {
  int64_t n = 0, hw = 0, c = 0;
  bool broadcast = true;
  int scale_input = 0;  // which input is the scale
  void run(const float* const* in, float* out) const override {
    const float* s = in[scale_input];
    const float* x = in[1 - scale_input];
    parallel_rows(n * hw, c, [&](int64_t r) {
      const float* sr = broadcast ? s + (r / hw) * c : s + r * c;
      for (int64_t j = 0; j < c; ++j) out[r * c + j] = sr[j] * x[r * c + j];
    });
  }
};

struct MaxPoolStep : Executable::Step {
  int64_t n = 0, ih = 0, iw = 0, c = 0, oh = 0, ow = 0;
  int64_t kh = 1, kw = 1, sh = 1, sw = 1, ph = 0, pw = 0, dh = 1, dw = 1;
  void run(const float* const* in, float* out) const override {
    const float* x = in[0];
    parallel_rows(n * oh, ow * c, [&](int64_t r) {
      const int64_t b = r / oh, y = r % oh;
      for (int64_t xo = 0; xo < ow; ++xo) {
        float* o = out + ((b * oh + y) * ow + xo) * c;
        for (int64_t j = 0; j < c; ++j) o[j] = -std::numeric_limits<float>::infinity();
        for (int64_t u = 0; u < kh; ++u) {
          const int64_t iy = y * sh - ph + u * dh;
          if (iy < 0 || iy >= ih) continue;
          for (int64_t v = 0; v < kw; ++v) {
            const int64_t ix = xo * sw - pw + v * dw;
            if (ix < 0 || ix >= iw) continue;
            const float* p = x + ((b * ih + iy) * iw + ix) * c;
            // torch's rule: NaN wins and then stays. Branch-free (v != v is the
            // NaN test) so the compiler vectorises it over channels.
            for (int64_t j = 0; j < c; ++j) {
              const float v = p[j], m = o[j];
              o[j] = (v > m || v != v) ? v : m;
            }
          }
        }
      }
    });
  }
};

// torch.nn.AdaptiveAvgPool2d: window [floor(i*in/out), ceil((i+1)*in/out)).
struct AvgPoolStep : Executable::Step {
  int64_t n = 0, ih = 0, iw = 0, c = 0, oh = 1, ow = 1;
  void run(const float* const* in, float* out) const override {
    const float* x = in[0];
    parallel_rows(n * oh * ow, c, [&](int64_t r) {
      const int64_t b = r / (oh * ow), y = (r / ow) % oh, xo = r % ow;
      const int64_t y0 = (y * ih) / oh, y1 = ((y + 1) * ih + oh - 1) / oh;
      const int64_t x0 = (xo * iw) / ow, x1 = ((xo + 1) * iw + ow - 1) / ow;
      float* o = out + r * c;
      for (int64_t j = 0; j < c; ++j) o[j] = 0.0f;
      for (int64_t iy = y0; iy < y1; ++iy)
        for (int64_t ix = x0; ix < x1; ++ix) {
          const float* p = x + ((b * ih + iy) * iw + ix) * c;
          for (int64_t j = 0; j < c; ++j) o[j] += p[j];
        }
      const float inv = static_cast<float>((y1 - y0) * (x1 - x0));
      for (int64_t j = 0; j < c; ++j) o[j] /= inv;
    });
  }
};

// [N, H, W, C] -> [N, C*H*W] in torch's (C, H, W) order.
struct FlattenStep : Executable::Step {
  int64_t n = 0, h = 0, w = 0, c = 0;
  void run(const float* const* in, float* out) const override {
    const float* x = in[0];
    parallel_rows(n * c, h * w, [&](int64_t r) {
      const int64_t b = r / c, ch = r % c;
      for (int64_t p = 0; p < h * w; ++p) out[r * h * w + p] = x[(b * h * w + p) * c + ch];
    });
  }
};

// "+bn1" for the fused node "layer1.0.bn1": the last component of its path.
std::string fused_suffix(const std::string& path) {
  const auto dot = path.rfind('.');
  return "+" + (dot == std::string::npos ? path : path.substr(dot + 1));
}

bool env_flag(const char* name) {
  const char* v = std::getenv(name);
  return v && *v && std::string(v) != "0";
}
bool verbose() { return env_flag("PYFLAME_VISION_VERBOSE"); }

}  // namespace

// ---------------------------------------------------------------- compile

Executable::Executable(const Graph& graph, const std::unordered_map<std::string, Tensor>& weights,
                       const TensorSpec& input, bool features, Isa isa, const Executable* donor)
    : input_(input), isa_(isa) {
  if (donor && donor->isa_ != isa) donor = nullptr;
  // Steps of the donor by (output value, label): the same node of the same graph.
  std::unordered_map<std::string, const Step*> donor_steps;
  if (donor)
    for (const auto& st : donor->steps_) donor_steps[std::to_string(st->output) + "|" + st->label] = st.get();
  const auto specs = graph.infer(input);
  const auto& nodes = graph.nodes();
  const int nv = static_cast<int>(specs.size());

  values_.resize(static_cast<size_t>(nv));
  for (int v = 0; v < nv; ++v) {
    Value& val = values_[static_cast<size_t>(v)];
    val.shape = specs[static_cast<size_t>(v)].shape();
    const Shape& s = val.shape;
    if (s.size() == 4) {
      val.n = s[0], val.c = s[1], val.h = s[2], val.w = s[3];
    } else if (s.size() == 2) {
      val.n = s[0], val.c = s[1];
    } else {
      throw Unsupported("the engine runs [N, C, H, W] and [N, F] values, got " + shape_to_string(s));
    }
  }

  auto node_of = [&](int v) -> const Node& { return nodes[static_cast<size_t>(v - 1)]; };
  auto layer_of = [&](int v) { return node_of(v).layer.get(); };

  // 1. Identity layers become aliases.
  std::vector<int> alias(static_cast<size_t>(nv), -1);
  auto resolve = [&](int v) {
    while (alias[static_cast<size_t>(v)] >= 0) v = alias[static_cast<size_t>(v)];
    return v;
  };
  for (int v = 1; v < nv; ++v) {
    const nn::Layer* l = layer_of(v);
    const int in0 = resolve(node_of(v).inputs[0]);
    if (dynamic_cast<const nn::Dropout*>(l) || dynamic_cast<const nn::StochasticDepth*>(l) ||
        dynamic_cast<const nn::Identity*>(l)) {
      alias[static_cast<size_t>(v)] = in0;
    } else if (dynamic_cast<const nn::Flatten*>(l)) {
      const Value& a = values_[static_cast<size_t>(in0)];
      if (a.h * a.w == 1 && values_[static_cast<size_t>(v)].shape.size() == 2) alias[static_cast<size_t>(v)] = in0;
    }
  }

  // 2. Requested outputs and the nodes they need.
  if (features) {
    for (ValueId t : graph.taps()) outputs_.push_back(static_cast<int>(t));
  } else {
    outputs_.push_back(static_cast<int>(graph.output()));
  }
  std::vector<char> needed(static_cast<size_t>(nv), 0);
  {
    std::vector<int> stack;
    for (int o : outputs_) stack.push_back(resolve(o));
    while (!stack.empty()) {
      const int v = stack.back();
      stack.pop_back();
      if (needed[static_cast<size_t>(v)]) continue;
      needed[static_cast<size_t>(v)] = 1;
      if (v == 0) continue;
      for (ValueId i : node_of(v).inputs) stack.push_back(resolve(static_cast<int>(i)));
    }
  }
  // Consumers of each resolved value among needed, non-alias nodes; outputs count too.
  std::vector<std::vector<int>> consumers(static_cast<size_t>(nv));
  std::vector<int> pinned(static_cast<size_t>(nv), 0);
  for (int o : outputs_) pinned[static_cast<size_t>(resolve(o))] = 1;
  for (int v = 1; v < nv; ++v) {
    if (alias[static_cast<size_t>(v)] >= 0 || !needed[static_cast<size_t>(v)]) continue;
    for (ValueId i : node_of(v).inputs) consumers[static_cast<size_t>(resolve(static_cast<int>(i)))].push_back(v);
  }
  std::vector<char> absorbed(static_cast<size_t>(nv), 0);
  auto sole_consumer = [&](int v) -> int {
    if (pinned[static_cast<size_t>(v)]) return -1;
    const auto& c = consumers[static_cast<size_t>(v)];
    if (c.size() != 1 || absorbed[static_cast<size_t>(c[0])]) return -1;
    return c[0];
  };

  auto weight = [&](const Node& n, const char* name) -> const Tensor& {
    const std::string key = n.path.empty() ? std::string(name) : n.path + "." + name;
    auto it = weights.find(key);
    if (it == weights.end() || !it->second.defined())
      throw WeightsError("the model has no value for '" + key +
                         "': call init_weights(seed) or load_state_dict() / load_weights() first");
    return it->second;
  };

  // 3. Steps, each scheduled at the position of the last node it absorbs.
  std::vector<std::vector<std::unique_ptr<Step>>> slots(static_cast<size_t>(nv));
  for (int v = 1; v < nv; ++v) {
    if (alias[static_cast<size_t>(v)] >= 0 || !needed[static_cast<size_t>(v)] || absorbed[static_cast<size_t>(v)])
      continue;
    const Node& node = node_of(v);
    const nn::Layer* l = node.layer.get();
    const Value& out = values_[static_cast<size_t>(v)];
    std::unique_ptr<Step> step;
    int at = v;

    if (auto* conv = dynamic_cast<const nn::Conv2d*>(l)) {
      const auto& o = conv->options();
      const Value& in = values_[static_cast<size_t>(resolve(node.inputs[0]))];
      // What fuses into this convolution: a BatchNorm, then a residual add, then an activation.
      std::string label = node.path.empty() ? "(model)" : node.path;
      int cur = v;
      const nn::BatchNorm2d* bn = nullptr;
      const Node* bnode = nullptr;
      int next = sole_consumer(cur);
      if (next > 0 && (bn = dynamic_cast<const nn::BatchNorm2d*>(layer_of(next)))) {
        bnode = &node_of(next);
        absorbed[static_cast<size_t>(next)] = 1;
        label += fused_suffix(bnode->path);
        cur = at = next;
      }
      int residual = -1;
      next = sole_consumer(cur);
      if (next > 0 && dynamic_cast<const nn::Add*>(layer_of(next))) {
        const auto& ins = node_of(next).inputs;
        const int a = resolve(ins[0]), b = resolve(ins[1]);
        if ((a == cur) != (b == cur)) {
          residual = a == cur ? b : a;
          absorbed[static_cast<size_t>(next)] = 1;
          label += "+add";
          cur = at = next;
        }
      }
      Epilogue ep = Epilogue::none;
      next = sole_consumer(cur);
      if (next > 0) {
        if (auto* act = dynamic_cast<const nn::ActivationLayer*>(layer_of(next))) {
          ep = epilogue_of(act->kind());
          absorbed[static_cast<size_t>(next)] = 1;
          label += std::string("+") + act_name(act->kind());
          cur = at = next;
        }
      }
      kernels::ConvShape cs;
      cs.batch = in.n;
      cs.in_h = in.h, cs.in_w = in.w, cs.in_c = in.c;
      cs.out_h = out.h, cs.out_w = out.w, cs.out_c = out.c;
      cs.kernel_h = o.kernel_size_.h, cs.kernel_w = o.kernel_size_.w;
      cs.stride_h = o.stride_.h, cs.stride_w = o.stride_.w;
      cs.pad_h = o.padding_.h, cs.pad_w = o.padding_.w;
      cs.dilation_h = o.dilation_.h, cs.dilation_w = o.dilation_.w;
      cs.groups = o.groups_;
      auto s = std::make_unique<ConvStep>();
      auto d = donor_steps.find(std::to_string(cur) + "|" + label);
      const auto* dconv = d != donor_steps.end() ? dynamic_cast<const ConvStep*>(d->second) : nullptr;
      if (dconv && dconv->has_residual == (residual >= 0)) {
        s->k = std::make_unique<kernels::Conv2dKernel>(cs, *dconv->k);  // packed weights already folded
      } else {
        const int64_t cout = o.out_channels_;
        const Tensor& w = weight(node, "weight");
        const int64_t wsize = w.numel();
        std::vector<float> wf(w.data_f32(), w.data_f32() + wsize);
        std::vector<float> bias(static_cast<size_t>(cout), 0.0f);
        if (o.bias_) {
          const Tensor& b = weight(node, "bias");
          std::copy(b.data_f32(), b.data_f32() + cout, bias.begin());
        }
        if (bn) {
          // BatchNorm folding: W' = W * g / sqrt(v + eps), b' = (b - m) * g / sqrt(v + eps) + beta.
          const float* g = weight(*bnode, "weight").data_f32();
          const float* beta = weight(*bnode, "bias").data_f32();
          const float* mean = weight(*bnode, "running_mean").data_f32();
          const float* var = weight(*bnode, "running_var").data_f32();
          const int64_t per = wsize / cout;
          for (int64_t c = 0; c < cout; ++c) {
            const double sc = static_cast<double>(g[c]) / std::sqrt(static_cast<double>(var[c]) + bn->eps());
            for (int64_t i = 0; i < per; ++i)
              wf[static_cast<size_t>(c * per + i)] = static_cast<float>(wf[static_cast<size_t>(c * per + i)] * sc);
            bias[static_cast<size_t>(c)] =
                static_cast<float>((static_cast<double>(bias[static_cast<size_t>(c)]) - mean[c]) * sc + beta[c]);
          }
        }
        const bool has_bias = o.bias_ || bn != nullptr;
        s->k = std::make_unique<kernels::Conv2dKernel>(cs, wf.data(), has_bias ? bias.data() : nullptr, ep, isa);
      }
      s->has_residual = residual >= 0;
      s->inputs = {resolve(node.inputs[0])};
      if (residual >= 0) s->inputs.push_back(residual);
      s->output = cur;
      s->label = label;
      s->algo = s->k->description();
      s->why = s->k->why();
      step = std::move(s);
    } else if (auto* lin = dynamic_cast<const nn::Linear*>(l)) {
      const Tensor& w = weight(node, "weight");
      const float* b = nullptr;
      // Linear's bias flag is private; the state dict tells whether it exists.
      const std::string bkey = node.path + ".bias";
      if (weights.count(bkey)) b = weight(node, "bias").data_f32();
      auto s = std::make_unique<LinearStep>();
      auto d = donor_steps.find(std::to_string(v) + "|" + node.path);
      const auto* dlin = d != donor_steps.end() ? dynamic_cast<const LinearStep*>(d->second) : nullptr;
      if (dlin) {
        s->k = std::make_unique<kernels::LinearKernel>(*dlin->k, kernels::LinearKernel::SharePacked{});
      } else {
        s->k = std::make_unique<kernels::LinearKernel>(lin->in_features(), lin->out_features(), w.data_f32(), b,
                                                       Epilogue::none, isa);
      }
      const Value& in = values_[static_cast<size_t>(resolve(node.inputs[0]))];
      if (in.h * in.w != 1) throw Unsupported("[linear] " + node.path + ": the engine runs Linear on [N, F] inputs");
      s->rows = in.n;
      s->inputs = {resolve(node.inputs[0])};
      s->output = v;
      s->label = node.path;
      s->algo = s->k->description();
      step = std::move(s);
    } else if (auto* bn = dynamic_cast<const nn::BatchNorm2d*>(l)) {
      auto s = std::make_unique<ScaleShiftStep>();
      const float* g = weight(node, "weight").data_f32();
      const float* beta = weight(node, "bias").data_f32();
      const float* mean = weight(node, "running_mean").data_f32();
      const float* var = weight(node, "running_var").data_f32();
      for (int64_t c = 0; c < out.c; ++c) {
        const double sc = static_cast<double>(g[c]) / std::sqrt(static_cast<double>(var[c]) + bn->eps());
        s->scale.push_back(static_cast<float>(sc));
        s->shift.push_back(static_cast<float>(beta[c] - mean[c] * sc));
      }
      s->rows = out.n * out.h * out.w, s->c = out.c;
      s->algo = "batchnorm (scale and shift)";
      step = std::move(s);
    } else if (auto* act = dynamic_cast<const nn::ActivationLayer*>(l)) {
      auto s = std::make_unique<ActStep>();
      s->act = act->kind();
      s->rows = out.n * out.h * out.w, s->c = out.c;
      s->algo = std::string("elementwise ") + act_name(act->kind());
      step = std::move(s);
    } else if (dynamic_cast<const nn::Add*>(l)) {
      auto s = std::make_unique<AddStep>();
      s->rows = out.n * out.h * out.w, s->c = out.c;
      s->algo = "elementwise add";
      step = std::move(s);
    } else if (dynamic_cast<const nn::Mul*>(l)) {
      auto s = std::make_unique<MulStep>();
      const Value& a = values_[static_cast<size_t>(resolve(node.inputs[0]))];
      const Value& b = values_[static_cast<size_t>(resolve(node.inputs[1]))];
      s->n = out.n, s->hw = out.h * out.w, s->c = out.c;
      if (a.shape == b.shape) {
        s->broadcast = false;
      } else if (a.h * a.w == 1 && a.shape.size() == 4 && a.n == out.n && a.c == out.c) {
        s->scale_input = 0;
      } else if (b.h * b.w == 1 && b.shape.size() == 4 && b.n == out.n && b.c == out.c) {
        s->scale_input = 1;
      } else {
        throw Unsupported("[mul] " + node.path + ": the engine multiplies equal shapes or [N, C, 1, 1] scales, got " +
                          shape_to_string(a.shape) + " and " + shape_to_string(b.shape));
      }
      s->algo = s->broadcast ? "channel scale" : "elementwise mul";
      step = std::move(s);
    } else if (auto* mp = dynamic_cast<const nn::MaxPool2d*>(l)) {
      auto s = std::make_unique<MaxPoolStep>();
      const Value& in = values_[static_cast<size_t>(resolve(node.inputs[0]))];
      s->n = in.n, s->ih = in.h, s->iw = in.w, s->c = in.c, s->oh = out.h, s->ow = out.w;
      s->kh = mp->kernel_size().h, s->kw = mp->kernel_size().w;
      s->sh = mp->stride().h, s->sw = mp->stride().w;
      s->ph = mp->padding().h, s->pw = mp->padding().w;
      s->dh = mp->dilation().h, s->dw = mp->dilation().w;
      s->algo = "max pool (NHWC, channel-vectorised)";
      step = std::move(s);
    } else if (dynamic_cast<const nn::AdaptiveAvgPool2d*>(l)) {
      auto s = std::make_unique<AvgPoolStep>();
      const Value& in = values_[static_cast<size_t>(resolve(node.inputs[0]))];
      s->n = in.n, s->ih = in.h, s->iw = in.w, s->c = in.c, s->oh = out.h, s->ow = out.w;
      s->algo = "adaptive average pool";
      step = std::move(s);
    } else if (dynamic_cast<const nn::Flatten*>(l)) {
      const Value& in = values_[static_cast<size_t>(resolve(node.inputs[0]))];
      if (in.shape.size() != 4 || out.shape.size() != 2)
        throw Unsupported("[flatten] " + node.path + ": the engine flattens [N, C, H, W] to [N, C*H*W] only");
      auto s = std::make_unique<FlattenStep>();
      s->n = in.n, s->h = in.h, s->w = in.w, s->c = in.c;
      s->algo = "flatten (NHWC to CHW order)";
      step = std::move(s);
    } else {
      throw Unsupported(std::string("[") + l->op_name() + "] " + node.path + ": the engine cannot run " +
                        l->type_name() + " yet");
    }
    if (step->inputs.empty()) {
      for (ValueId i : node.inputs) step->inputs.push_back(resolve(static_cast<int>(i)));
      step->output = v;
      step->label = node.path.empty() ? "(model)" : node.path;
    }
    slots[static_cast<size_t>(at)].push_back(std::move(step));
  }
  for (auto& s : slots)
    for (auto& st : s) steps_.push_back(std::move(st));
  for (int& o : outputs_) o = resolve(o);

  // 4. Memory plan: lifetimes in step order, greedy first-fit by size.
  const int ns = static_cast<int>(steps_.size());
  std::vector<int> def(static_cast<size_t>(nv), -2), last(static_cast<size_t>(nv), -2);
  def[0] = -1;
  last[0] = -1;
  for (int i = 0; i < ns; ++i) {
    const Step& s = *steps_[static_cast<size_t>(i)];
    def[static_cast<size_t>(s.output)] = i;
    last[static_cast<size_t>(s.output)] = std::max(last[static_cast<size_t>(s.output)], i);
    for (int in : s.inputs) last[static_cast<size_t>(in)] = std::max(last[static_cast<size_t>(in)], i);
  }
  for (int o : outputs_) last[static_cast<size_t>(o)] = ns;
  std::vector<int> order;
  for (int v = 0; v < nv; ++v)
    if (def[static_cast<size_t>(v)] >= -1) order.push_back(v);
  auto floats_of = [&](int v) {
    const Value& val = values_[static_cast<size_t>(v)];
    return (val.n * val.h * val.w * val.c + 15) / 16 * 16;
  };
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return floats_of(a) > floats_of(b); });
  std::vector<int> placed;
  for (int v : order) {
    const int64_t size = floats_of(v);
    std::vector<std::pair<int64_t, int64_t>> busy;
    for (int p : placed) {
      const bool overlap = !(last[static_cast<size_t>(p)] < def[static_cast<size_t>(v)] ||
                             last[static_cast<size_t>(v)] < def[static_cast<size_t>(p)]);
      if (overlap) busy.emplace_back(values_[static_cast<size_t>(p)].offset, floats_of(p));
    }
    std::sort(busy.begin(), busy.end());
    int64_t off = 0;
    for (const auto& b : busy) {
      if (off + size <= b.first) break;
      off = std::max(off, b.first + b.second);
    }
    values_[static_cast<size_t>(v)].offset = off;
    arena_floats_ = std::max(arena_floats_, off + size);
    placed.push_back(v);
  }
  arena_floats_ = std::max<int64_t>(arena_floats_, 16);

  for (const auto& s : steps_) plan_ += s->label + ": " + s->algo + "\n";
  if (verbose()) {
    std::fprintf(stderr, "[pyflame_vision] compiled for input %s (%s, isa %s): %zu steps, arena %.2f MiB\n",
                 shape_to_string(input.shape()).c_str(), features ? "features" : "forward", isa_name(isa),
                 steps_.size(), static_cast<double>(arena_floats_) * 4.0 / (1024.0 * 1024.0));
    for (const auto& s : steps_) {
      std::fprintf(stderr, "[pyflame_vision]   %s: %s\n", s->label.c_str(), s->algo.c_str());
      if (!s->why.empty()) std::fprintf(stderr, "[pyflame_vision]       (%s)\n", s->why.c_str());
    }
  }
}

Executable::~Executable() {
  for (float* a : free_arenas_) std::free(a);
}

float* Executable::acquire_arena() const {
  {
    std::lock_guard<std::mutex> lock(arena_mu_);
    if (!free_arenas_.empty()) {
      float* a = free_arenas_.back();
      free_arenas_.pop_back();
      return a;
    }
  }
  const size_t bytes = static_cast<size_t>(arena_floats_) * sizeof(float);
  void* p = std::aligned_alloc(64, (bytes + 63) / 64 * 64);
  if (!p) throw std::bad_alloc();
  return static_cast<float*>(p);
}

void Executable::release_arena(float* a) const {
  std::lock_guard<std::mutex> lock(arena_mu_);
  free_arenas_.push_back(a);
}

// ---------------------------------------------------------------- run

std::vector<Tensor> Executable::run(const models::InputView& input) const {
  if (input.shape != input_.shape())
    throw ShapeError("executable compiled for " + shape_to_string(input_.shape()) + ", got " +
                     shape_to_string(input.shape));
  float* arena = acquire_arena();
  struct Release {
    const Executable* e;
    float* a;
    ~Release() { e->release_arena(a); }
  } release{this, arena};

  // NCHW (any strides) -> NHWC.
  {
    const Value& v0 = values_[0];
    float* dst = arena + v0.offset;
    const int64_t s0 = input.strides[0], s1 = input.strides[1], s2 = input.strides[2], s3 = input.strides[3];
    const float* src = input.data;
    const int64_t H = v0.h, W = v0.w, C = v0.c;
    parallel_rows(v0.n * H, W * C, [&](int64_t r) {
      const int64_t b = r / H, y = r % H;
      float* d = dst + r * W * C;
      const float* s = src + b * s0 + y * s2;
      for (int64_t x = 0; x < W; ++x)
        for (int64_t c = 0; c < C; ++c) d[x * C + c] = s[x * s3 + c * s1];
    });
  }

  // PYFLAME_VISION_PROFILE=1: per-step wall times on stderr (read once per run).
  static const bool profile = env_flag("PYFLAME_VISION_PROFILE");
  const float* ins[4];
  double total = 0.0;
  for (const auto& s : steps_) {
    for (size_t i = 0; i < s->inputs.size(); ++i) ins[i] = arena + values_[static_cast<size_t>(s->inputs[i])].offset;
    if (!profile) {
      s->run(ins, arena + values_[static_cast<size_t>(s->output)].offset);
      continue;
    }
    const auto t0 = std::chrono::steady_clock::now();
    s->run(ins, arena + values_[static_cast<size_t>(s->output)].offset);
    const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    total += ms;
    std::fprintf(stderr, "[pyflame_vision profile] %9.3f ms  %s: %s\n", ms, s->label.c_str(), s->algo.c_str());
  }
  if (profile) std::fprintf(stderr, "[pyflame_vision profile] %9.3f ms  total (%zu steps)\n", total, steps_.size());

  std::vector<Tensor> out;
  for (int o : outputs_) {
    const Value& v = values_[static_cast<size_t>(o)];
    Tensor t{TensorSpec(v.shape, DType::float32)};
    float* d = t.data_f32();
    const float* s = arena + v.offset;
    if (v.shape.size() == 4) {
      const int64_t C = v.c, HW = v.h * v.w;
      parallel_rows(v.n * C, HW, [&](int64_t r) {
        const int64_t b = r / C, c = r % C;
        for (int64_t p = 0; p < HW; ++p) d[r * HW + p] = s[(b * HW + p) * C + c];
      });
    } else {
      std::memcpy(d, s, static_cast<size_t>(v.n * v.c) * sizeof(float));
    }
    out.push_back(std::move(t));
  }
  return out;
}

}  // namespace pyflame_vision
