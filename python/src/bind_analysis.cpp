// Bindings of the techniques: the residual-stream analysis of a cache, activation
// patching (named metrics or any Python metric), FactoredMatrix and circuits, head
// detection.
#include <pybind11/functional.h>
#include <pybind11/stl.h>

#include "mechlens/analysis/circuits.h"
#include "mechlens/analysis/head_detect.h"
#include "mechlens/analysis/patching.h"
#include "mechlens/analysis/residual.h"
#include "mechlens/core/error.h"
#include "mechlens/core/factored_matrix.h"
#include "python/src/bindings.h"

namespace mechlens::python {

namespace {

py::tuple stack_tuple(const ComponentStack& s) { return py::make_tuple(s.stack, s.labels); }

// A metric for the sweep: a named one (kind, answer, wrong, position), or any
// Python callable of the patched logits.
PatchMetric patch_metric(const py::object& metric, const std::string& kind, const std::vector<int64_t>& answer,
                         const std::vector<int64_t>& wrong, int64_t position) {
  PatchMetric pm;
  if (!metric.is_none()) {
    auto f = keep(metric);
    pm.kind = "custom";
    pm.custom = [f](const at::Tensor& logits) {
      py::gil_scoped_acquire gil;
      return as_tensor((*f)(logits), "the patching metric");
    };
    return pm;
  }
  pm.kind = kind, pm.answer = answer, pm.wrong = wrong, pm.position = position;
  return pm;
}

}  // namespace

void bind_analysis(py::module_& m) {
  // ---- residual stream (ActivationCache methods)
  using RA = ResidualAnalysis;
  m.def("accumulated_resid",
        [](const HookedTransformer& t, const ActivationCache& c, int layer, bool incl_mid, bool apply_ln,
           PosSlice pos, bool mlp_input) {
          return stack_tuple(RA(t, c).accumulated_resid(layer, incl_mid, apply_ln, pos, mlp_input));
        },
        py::arg("model"), py::arg("cache"), py::arg("layer"), py::arg("incl_mid"), py::arg("apply_ln"),
        py::arg("pos"), py::arg("mlp_input"));
  m.def("decompose_resid",
        [](const HookedTransformer& t, const ActivationCache& c, int layer, bool mlp_input, bool apply_ln,
           PosSlice pos, bool incl_embeds, const std::string& mode) {
          return stack_tuple(RA(t, c).decompose_resid(layer, mlp_input, apply_ln, pos, incl_embeds, mode));
        },
        py::arg("model"), py::arg("cache"), py::arg("layer"), py::arg("mlp_input"), py::arg("apply_ln"),
        py::arg("pos"), py::arg("incl_embeds"), py::arg("mode"));
  m.def("stack_head_results",
        [](const HookedTransformer& t, const ActivationCache& c, int layer, bool apply_ln, PosSlice pos) {
          return stack_tuple(RA(t, c).stack_head_results(layer, apply_ln, pos));
        },
        py::arg("model"), py::arg("cache"), py::arg("layer"), py::arg("apply_ln"), py::arg("pos"));
  m.def("stack_neuron_results",
        [](const HookedTransformer& t, const ActivationCache& c, int layer, PosSlice pos, int64_t n_begin,
           int64_t n_end, bool apply_ln) {
          return stack_tuple(RA(t, c).stack_neuron_results(layer, pos, n_begin, n_end, apply_ln));
        },
        py::arg("model"), py::arg("cache"), py::arg("layer"), py::arg("pos"), py::arg("n_begin"), py::arg("n_end"),
        py::arg("apply_ln"));
  m.def("get_full_resid_decomposition",
        [](const HookedTransformer& t, const ActivationCache& c, int layer, bool mlp_input, bool expand_neurons,
           bool apply_ln, PosSlice pos) {
          return stack_tuple(RA(t, c).get_full_resid_decomposition(layer, mlp_input, expand_neurons, apply_ln, pos));
        },
        py::arg("model"), py::arg("cache"), py::arg("layer"), py::arg("mlp_input"), py::arg("expand_neurons"),
        py::arg("apply_ln"), py::arg("pos"));
  m.def("apply_ln_to_stack",
        [](const HookedTransformer& t, const ActivationCache& c, const at::Tensor& stack, int layer, bool mlp_input,
           PosSlice pos) { return RA(t, c).apply_ln_to_stack(stack, layer, mlp_input, pos); },
        py::arg("model"), py::arg("cache"), py::arg("stack"), py::arg("layer"), py::arg("mlp_input"), py::arg("pos"));
  m.def("logit_attrs",
        [](const HookedTransformer& t, const ActivationCache& c, const at::Tensor& stack,
           const std::vector<int64_t>& answer, const std::vector<int64_t>& wrong, PosSlice pos) {
          return RA(t, c).logit_attrs(stack, answer, wrong, pos);
        },
        py::arg("model"), py::arg("cache"), py::arg("stack"), py::arg("answer"), py::arg("wrong"), py::arg("pos"));

  // ---- activation patching
  m.def("act_patch",
        [](HookedTransformer& t, const at::Tensor& corrupted, const ActivationCache& clean_cache,
           const std::string& site, const std::string& mode, const py::object& metric, const std::string& kind,
           const std::vector<int64_t>& answer, const std::vector<int64_t>& wrong, int64_t position, bool batched,
           const py::object& progress) {
          PatchMetric pm = patch_metric(metric, kind, answer, wrong, position);
          std::function<void(int64_t, int64_t)> report;
          if (!progress.is_none()) {
            auto f = keep(progress);
            report = [f](int64_t done, int64_t total) {
              py::gil_scoped_acquire gil;
              (*f)(done, total);
            };
          }
          PatchResult r;
          {
            // The sweep runs without the GIL (the autograd engine of attribution patching
            // refuses it); the Python metric and progress callbacks take it back.
            py::gil_scoped_release nogil;
            ActivationPatching ap(t, clean_cache, corrupted, std::move(pm));
            ap.progress = std::move(report);
            r = site == "block_every"          ? ap.block_every(batched)
                : site == "head_all_pos_every" ? ap.head_all_pos_every(batched)
                : site == "head_by_pos_every"  ? ap.head_by_pos_every(batched)
                : mode.rfind("attribution", 0) == 0
                    ? ap.attribution(site, mode.size() > 12 ? mode.substr(12) : "by_pos")
                    : ap.run(site, mode, batched);
          }
          py::dict out;
          out["grid"] = r.grid;
          out["axes"] = r.axes;
          out["labels"] = r.labels;
          out["clean_metric"] = r.clean_metric;
          out["corrupted_metric"] = r.corrupted_metric;
          out["patches"] = r.patches;
          out["skipped"] = r.skipped;
          return out;
        },
        py::arg("model"), py::arg("corrupted_tokens"), py::arg("clean_cache"), py::arg("site"), py::arg("mode"),
        py::arg("metric"), py::arg("kind"), py::arg("answer"), py::arg("wrong"), py::arg("position"),
        py::arg("batched") = true, py::arg("progress") = py::none());

  // ---- FactoredMatrix and circuits
  py::class_<FactoredMatrix>(m, "FactoredMatrix")
      .def(py::init<at::Tensor, at::Tensor>(), py::arg("A"), py::arg("B"))
      .def_property_readonly("A", &FactoredMatrix::A)
      .def_property_readonly("B", &FactoredMatrix::B)
      .def_property_readonly("AB", &FactoredMatrix::AB)
      .def_property_readonly("BA", &FactoredMatrix::BA)
      .def_property_readonly("T", &FactoredMatrix::T)
      .def_property_readonly("ldim", &FactoredMatrix::ldim)
      .def_property_readonly("mdim", &FactoredMatrix::mdim)
      .def_property_readonly("rdim", &FactoredMatrix::rdim)
      .def_property_readonly("S", &FactoredMatrix::S)
      .def_property_readonly("eigenvalues", &FactoredMatrix::eigenvalues)
      .def("svd", &FactoredMatrix::svd)
      .def("norm", &FactoredMatrix::norm)
      .def("get_corner", &FactoredMatrix::corner, py::arg("k") = 3)
      .def_property_readonly("collapse_l", &FactoredMatrix::collapse_l)
      .def_property_readonly("collapse_r", &FactoredMatrix::collapse_r)
      .def("left_mul", &FactoredMatrix::left_mul)
      .def("right_mul", &FactoredMatrix::right_mul)
      .def("index", &FactoredMatrix::operator[]);
  m.def("composition_score", &composition_score, py::arg("left"), py::arg("right"));
  m.def("qk_circuit", &qk_circuit);
  m.def("ov_circuit", &ov_circuit);
  m.def("full_qk_circuit", &full_qk_circuit);
  m.def("full_ov_circuit", &full_ov_circuit);
  m.def("all_composition_scores", &all_composition_scores, py::arg("model"), py::arg("mode"));
  m.def("copying_scores", &copying_scores);
  m.def("neuron_logit_effects", &neuron_logit_effects, py::arg("model"), py::arg("layer"));

  // ---- head detection
  m.def("detection_pattern", &detection_pattern, py::arg("name"), py::arg("tokens"));
  m.def("detect_head",
        [](HookedTransformer& t, const at::Tensor& tokens, const at::Tensor& pattern, bool exclude_bos,
           bool exclude_current_token, const std::string& error_measure) {
          DetectOptions o;
          o.exclude_bos = exclude_bos, o.exclude_current_token = exclude_current_token;
          o.error_measure = error_measure;
          return detect_head(t, tokens, pattern, o);
        },
        py::arg("model"), py::arg("tokens"), py::arg("pattern"), py::arg("exclude_bos") = false,
        py::arg("exclude_current_token") = false, py::arg("error_measure") = "mul",
        py::call_guard<py::gil_scoped_release>());
  m.def("induction_scores", &induction_scores, py::arg("model"), py::arg("repeated"),
        py::call_guard<py::gil_scoped_release>());
}

}  // namespace mechlens::python
