// read_weights / load_weights: one entry point for every weight format the
// C++ library reads, chosen by content (rules: include/pyflame_vision/io.h).
#include <unordered_set>

#include "io/byte_source.h"
#include "io/io_util.h"
#include "io/readers.h"
#include "pyflame_vision/error.h"
#include "pyflame_vision/io.h"

namespace pyflame_vision {
namespace {

void strip(NamedTensors& tensors, const std::string& prefix, const std::string& source) {
  if (prefix.empty()) return;
  std::unordered_set<std::string> seen;
  for (auto& kv : tensors) {
    const std::string original = kv.first;
    if (kv.first.compare(0, prefix.size(), prefix) == 0) kv.first.erase(0, prefix.size());
    if (!seen.insert(kv.first).second)
      throw WeightsError(source + ": strip_prefix=" + io_detail::quoted(prefix) + " maps " +
                         io_detail::quoted(original) + " and another key to the same key " + io_detail::quoted(kv.first));
  }
}

}  // namespace

NamedTensors read_weights(const std::string& path, const CheckpointOptions& options) {
  // A name ending in .safetensors always goes to the strict .safetensors
  // reader, so a malformed one gets that reader's message (the header rule it
  // breaks) rather than "not a PyTorch checkpoint".
  if (!io_detail::ends_with_ci(path, ".safetensors")) {
    io_detail::FileSource file(path);
    const WeightFormat format = io_detail::detect_weight_format(file);
    if (format != WeightFormat::safetensors) return io_detail::read_checkpoint(file, format, options);
  }
  // .safetensors: the streaming reader (no mapping needed, the data is contiguous).
  if (options.key)
    throw InvalidArgument("read_weights: key=" + io_detail::quoted(*options.key) + " selects an entry of a PyTorch "
                          "checkpoint, but " + path + " is a .safetensors file (a flat dict of tensors)");
  NamedTensors tensors = load_safetensors(path);
  strip(tensors, options.strip_prefix, path);
  return tensors;
}

models::LoadResult load_weights(models::Model& model, const std::string& path, bool strict,
                                const CheckpointOptions& options) {
  if (io_detail::ends_with_ci(path, ".npz"))
    throw InvalidArgument("load_weights: " + path + " is a NumPy archive, which only the Python package reads "
                          "(pyflame_vision.load_weights); from C++ use a .safetensors file or a PyTorch checkpoint");
  NamedTensors state = read_weights(path, options);
  bool all_module = !state.empty() && options.strip_prefix.empty();
  for (const auto& kv : state) all_module &= kv.first.compare(0, 7, "module.") == 0;
  try {
    // The tensors were just read and nobody else holds them: the model takes them over without a copy.
    return model.load_state_dict(std::move(state), strict);
  } catch (const WeightsError& e) {
    throw WeightsError(path + ": " + e.what() +
                       (all_module ? "\nEvery key starts with \"module.\" (a DataParallel checkpoint): pass "
                                     "strip_prefix=\"module.\"."
                                   : ""));
  }
}

}  // namespace pyflame_vision
