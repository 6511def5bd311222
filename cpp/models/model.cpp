#include "pyflame_vision/models/model.h"

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <sstream>

#include "pyflame_vision/checked.h"
#include "pyflame_vision/error.h"

namespace pyflame_vision {
namespace models {

std::shared_ptr<const Graph> Model::graph() const { return std::atomic_load(&graph_); }

void Model::rebuild_graph() {
  GraphBuilder b;
  const ValueId out = lower_model(b, b.input());
  std::atomic_store(&graph_, std::shared_ptr<const Graph>(std::make_shared<Graph>(std::move(b).finish(out))));
}

ValueId Model::lower(nn::Lowering& g, ValueId x) const { return lower_model(g, x); }

namespace {
void check_input(const TensorSpec& input) {
  if (input.ndim() != 4)
    throw ShapeError("[input] expected a 4-D input [N, C, H, W], got a " + std::to_string(input.ndim()) +
                     "-D input of shape " + shape_to_string(input.shape()));
  if (input.dtype() != DType::float32)
    throw TypeError(std::string("[input] expected a float32 input, got ") + dtype_name(input.dtype()));
}
}  // namespace

TensorSpec Model::get_output_spec(const TensorSpec& input) const {
  check_input(input);
  auto g = graph();
  return g->infer(input)[static_cast<size_t>(g->output())];
}

Shape Model::get_output_shape(const Shape& input_shape) const {
  return get_output_spec(TensorSpec(input_shape, DType::float32)).shape();
}

std::vector<TensorSpec> Model::forward_features(const TensorSpec& input) const {
  check_input(input);
  auto g = graph();
  const auto values = g->infer(input);
  std::vector<TensorSpec> out;
  for (ValueId v : g->taps()) out.push_back(values[static_cast<size_t>(v)]);
  return out;
}

Summary Model::summary(const TensorSpec& input) const {
  check_input(input);
  auto g = graph();
  const auto values = g->infer(input);
  Summary s;
  s.model = name_.empty() ? type_name() : name_;
  s.input = input;
  s.output_shape = values[static_cast<size_t>(g->output())].shape();
  std::vector<TensorSpec> in;
  for (size_t i = 0; i < g->nodes().size(); ++i) {
    const Node& n = g->nodes()[i];
    const TensorSpec& out = values[i + 1];
    in.clear();
    for (ValueId v : n.inputs) in.push_back(values[static_cast<size_t>(v)]);
    SummaryRow row{n.path, n.layer->type_name(), out.shape(), n.layer->num_local_parameters(), n.layer->macs(in, out)};
    s.total_macs = checked::add(s.total_macs, row.macs, "the total MACs");
    s.activation_bytes = checked::add(s.activation_bytes, out.nbytes(), "the activation size");
    s.rows.push_back(std::move(row));
  }
  s.total_params = num_parameters();
  for (const auto& p : state_dict_spec()) s.param_bytes = checked::add(s.param_bytes, p.spec.nbytes());
  return s;
}

namespace {
std::string group_digits(int64_t v) {
  std::string d = std::to_string(v < 0 ? -v : v), out;
  for (size_t i = 0; i < d.size(); ++i) {
    if (i && (d.size() - i) % 3 == 0) out += ',';
    out += d[i];
  }
  return (v < 0 ? "-" : "") + out;
}
std::string fixed(double v, int decimals) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}
std::string pad_right(const std::string& s, size_t w) { return s.size() >= w ? s : s + std::string(w - s.size(), ' '); }
std::string pad_left(const std::string& s, size_t w) { return s.size() >= w ? s : std::string(w - s.size(), ' ') + s; }
}  // namespace

std::string Summary::to_string() const {
  size_t wp = 5, wt = 4, ws = 12, wn = 6, wm = 4;
  for (const auto& r : rows) {
    wp = std::max(wp, r.path.size());
    wt = std::max(wt, r.type.size());
    ws = std::max(ws, shape_to_string(r.output_shape).size());
    wn = std::max(wn, group_digits(r.params).size());
    wm = std::max(wm, group_digits(r.macs).size());
  }
  const size_t width = wp + wt + ws + wn + wm + 8;
  const std::string rule(width, '-'), dbl(width, '=');
  std::ostringstream os;
  os << model << " (input " << shape_to_string(input.shape()) << ", " << dtype_name(input.dtype()) << ")\n";
  os << dbl << "\n";
  os << pad_right("Layer", wp) << "  " << pad_right("Type", wt) << "  " << pad_right("Output shape", ws) << "  "
     << pad_left("Params", wn) << "  " << pad_left("MACs", wm) << "\n";
  os << rule << "\n";
  for (const auto& r : rows) {
    os << pad_right(r.path, wp) << "  " << pad_right(r.type, wt) << "  "
       << pad_right(shape_to_string(r.output_shape), ws) << "  " << pad_left(group_digits(r.params), wn) << "  "
       << pad_left(group_digits(r.macs), wm) << "\n";
  }
  os << dbl << "\n";
  os << "Output shape: " << shape_to_string(output_shape) << "\n";
  os << "Total params: " << group_digits(total_params) << " (" << fixed(static_cast<double>(total_params) / 1e6, 2)
     << " M)\n";
  os << "Total MACs: " << group_digits(total_macs) << " (" << fixed(static_cast<double>(total_macs) / 1e9, 3)
     << " G; convolution and linear layers)\n";
  os << "Parameters and buffers: " << fixed(static_cast<double>(param_bytes) / (1024.0 * 1024.0), 2)
     << " MiB\n";
  os << "Activations (every layer output, no reuse): "
     << fixed(static_cast<double>(activation_bytes) / (1024.0 * 1024.0), 2) << " MiB\n";
  return os.str();
}

}  // namespace models
}  // namespace pyflame_vision
