#include "graph/executable.h"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>

#include "core/memory.h"
#include "kernels/eltwise.h"
#include "pyflame_vision/cancel.h"
#include "pyflame_vision/error.h"

namespace pyflame_vision {

namespace {

bool env_flag(const char* name) {
  const char* v = std::getenv(name);
  return v && *v && std::string(v) != "0";
}

}  // namespace

Executable::Executable(const Graph& graph, WeightStore& weights, const TensorSpec& input, bool features, Isa isa,
                       kernels::PackCache& packs)
    : input_(input), isa_(isa) {
  Program p = passes::lower(graph, input, features);
  passes::fold_batchnorm(p);
  passes::fuse_epilogues(p);
  steps_ = passes::select_kernels(p, weights, isa, packs);
  outputs_ = p.outputs;
  values_ = std::move(p.values);
  arena_floats_ = plan_memory(steps_, outputs_, values_);

  for (const auto& s : steps_) plan_ += s->label + ": " + s->algo + "\n";
  if (env_flag("PYFLAME_VISION_VERBOSE")) {
    std::fprintf(stderr, "[pyflame_vision] compiled for input %s (%s, isa %s): %zu steps, arena %.2f MiB\n",
                 shape_to_string(input.shape()).c_str(), features ? "features" : "forward", isa_name(isa),
                 steps_.size(), static_cast<double>(arena_floats_) * 4.0 / (1024.0 * 1024.0));
    for (const auto& s : steps_) {
      std::fprintf(stderr, "[pyflame_vision]   %s: %s\n", s->label.c_str(), s->algo.c_str());
      size_t b = 0;
      while (b < s->why.size()) {
        size_t e = s->why.find('\n', b);
        if (e == std::string::npos) e = s->why.size();
        std::fprintf(stderr, "[pyflame_vision]       %s\n", s->why.substr(b, e - b).c_str());
        b = e + 1;
      }
    }
  }
}

int64_t Executable::macs_executed() const {
  int64_t total = 0;
  for (const auto& s : steps_) total += s->macs;
  return total;
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
  // Checked before allocating: an arena the system cannot give is an OutOfMemory
  // saying how much, not an overcommitted allocation killed when first touched.
  const size_t bytes = (static_cast<size_t>(arena_floats_) * sizeof(float) + 63) / 64 * 64;
  const std::string what = "the activations of a forward on input " + shape_to_string(input_.shape());
  detail::check_memory(bytes, what);
  void* p = std::aligned_alloc(64, bytes);
  if (!p) detail::throw_out_of_memory(bytes, what);
  return static_cast<float*>(p);
}

void Executable::release_arena(float* a) const {
  std::lock_guard<std::mutex> lock(arena_mu_);
  free_arenas_.push_back(a);
}

std::vector<Tensor> Executable::run(const InputView& input) const {
  if (input.shape != input_.shape())
    throw ShapeError("executable compiled for " + shape_to_string(input_.shape()) + ", got " +
                     shape_to_string(input.shape));
  float* arena = acquire_arena();
  struct Release {
    const Executable* e;
    float* a;
    ~Release() { e->release_arena(a); }
  } release{this, arena};

  const Value& v0 = values_[0];
  kernels::nchw_to_nhwc(v0.n, v0.c, v0.h, v0.w, input.data, input.strides.data(), arena + v0.offset);

  // PYFLAME_VISION_PROFILE=1: per-step wall times on stderr (read once per run).
  static const bool profile = env_flag("PYFLAME_VISION_PROFILE");
  const float* ins[4];
  double total = 0.0;
  for (const auto& s : steps_) {
    // A caller's cancel flag (cancel.h) is also checked between the tiles of each step, in parallel_for.
    throw_if_cancelled("forward");
    for (size_t i = 0; i < s->inputs.size(); ++i) ins[i] = arena + values_[static_cast<size_t>(s->inputs[i])].offset;
    float* out = arena + values_[static_cast<size_t>(s->output)].offset;
    if (!profile) {
      s->run(ins, out);
      continue;
    }
    const auto t0 = std::chrono::steady_clock::now();
    s->run(ins, out);
    const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    total += ms;
    std::fprintf(stderr, "[pyflame_vision profile] %9.3f ms  %s: %s\n", ms, s->label.c_str(), s->algo.c_str());
  }
  if (profile) std::fprintf(stderr, "[pyflame_vision profile] %9.3f ms  total (%zu steps)\n", total, steps_.size());

  std::vector<Tensor> out;
  for (int o : outputs_) {
    const Value& v = values_[static_cast<size_t>(o)];
    Tensor t{TensorSpec(v.shape, DType::float32)};
    const float* s = arena + v.offset;
    if (v.shape.size() == 4) {
      kernels::nhwc_to_nchw(v.n, v.h, v.w, v.c, s, t.data_f32());
    } else {
      std::memcpy(t.data_f32(), s, static_cast<size_t>(v.n * v.c) * sizeof(float));
    }
    out.push_back(std::move(t));
  }
  return out;
}

}  // namespace pyflame_vision
