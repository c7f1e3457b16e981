// Bindings of the task-level techniques: ablations and self-repair, the IOI dataset and
// its evaluation, and the training lab's recipes (the same library calls as the CLI's
// `ablate`, `ioi` and `train`).
#include <pybind11/stl.h>

#include <map>

#include "mechlens/analysis/ablation.h"
#include "mechlens/analysis/ioi.h"
#include "mechlens/core/error.h"
#include "mechlens/core/io.h"
#include "mechlens/loading/load_model.h"
#include "mechlens/train/tasks/addition.h"
#include "mechlens/train/tasks/grokking.h"
#include "mechlens/train/tasks/induction.h"
#include "mechlens/train/tasks/lm.h"
#include "mechlens/train/tasks/superposition.h"
#include "mechlens/train/trainer.h"
#include "python/src/bindings.h"

namespace mechlens::python {

namespace {

std::vector<AblationTarget> targets_of(const std::vector<std::string>& specs) {
  if (specs.empty()) throw Error("ablate: give at least one target (\"L.H\", \"neuron:L.N\", \"attn:L\", \"mlp:L\")");
  std::vector<AblationTarget> out;
  for (const auto& s : specs) out.push_back(AblationTarget::parse(s));
  return out;
}

AblationOptions ablation_options(const std::string& mode, const std::optional<at::Tensor>& reference, uint64_t seed) {
  AblationOptions o;
  o.mode = mode, o.seed = seed;
  if (reference) o.reference = *reference;
  return o;
}

// A recipe from Python: its defaults overridden by `settings` (unknown names are an
// error), validated, started in run_dir, trained and analysed; or, with resume, the
// run in run_dir continued from its own config.json. Returns the summary JSON.
template <class Config, class Run>
std::string run_recipe(const char* name, const std::string& settings_json, const std::string& run_dir, bool resume,
                       Run run) {
  Config cfg;
  if (resume) {
    cfg = Config::from_json(resume_run(run_dir), join_path(run_dir, "config.json"));
  } else {
    json j = cfg.to_json();
    const std::string where = std::string("train.") + name;
    const json settings = json::parse(settings_json);
    for (const auto& [k, v] : settings.items()) {
      if (!j.contains(k) || k == "recipe") fail(where, "unknown setting \"" + k + "\"");
      j[k] = v;
    }
    cfg = Config::from_json(j, where);
    cfg.validate(where);
    if (holds_run(run_dir)) fail(run_dir, "already holds a run; pass resume=True to continue it");
    start_run(run_dir, cfg.to_json());
  }
  return run(cfg, run_dir, resume).dump();
}

// Binds train_<name> and records the recipe's default settings for recipe_defaults.
template <class Config>
void bind_recipe(py::module_& m, const char* name,
                 nlohmann::json (*run)(const Config&, const std::string&, bool),
                 std::map<std::string, std::string>& defaults) {
  defaults[name] = Config{}.to_json().dump();
  m.def((std::string("train_") + name).c_str(),
        [name, run](const std::string& settings_json, const std::string& run_dir, bool resume) {
          return run_recipe<Config>(name, settings_json, run_dir, resume, run);
        },
        py::arg("settings_json"), py::arg("run_dir"), py::arg("resume") = false,
        py::call_guard<py::gil_scoped_release>());
}

}  // namespace

void bind_techniques(py::module_& m) {
  // ---- ablation
  m.def("ablate",
        [](HookedTransformer& t, const at::Tensor& tokens, const std::vector<std::string>& targets,
           const std::string& mode, const std::optional<at::Tensor>& reference, uint64_t seed) {
          auto hooks = ablation_hooks(t, targets_of(targets), ablation_options(mode, reference, seed), tokens.size(0));
          return t.run_with_hooks(tokens, hooks);
        },
        py::arg("model"), py::arg("tokens"), py::arg("targets"), py::arg("mode") = "zero",
        py::arg("reference") = py::none(), py::arg("seed") = 0, py::call_guard<py::gil_scoped_release>());
  m.def("self_repair",
        [](HookedTransformer& t, const at::Tensor& tokens, const std::vector<int64_t>& answer,
           const std::vector<int64_t>& wrong, const std::string& head, const std::string& mode,
           const std::optional<at::Tensor>& reference, uint64_t seed) {
          SelfRepairReport r;
          {
            py::gil_scoped_release nogil;
            r = self_repair(t, tokens, answer, wrong, AblationTarget::parse(head),
                            ablation_options(mode, reference, seed));
          }
          py::dict d;
          d["ablated"] = r.ablated.label();
          d["mode"] = r.mode;
          d["logit_diff_clean"] = r.logit_diff_clean;
          d["logit_diff_ablated"] = r.logit_diff_ablated;
          d["direct_before"] = r.direct_before;
          d["direct_after"] = r.direct_after;
          d["mlp_before"] = r.mlp_before;
          d["mlp_after"] = r.mlp_after;
          d["ablated_direct_effect"] = r.ablated_direct_effect;
          d["self_repair"] = r.self_repair;
          d["head_labels"] = r.head_labels;
          return d;
        },
        py::arg("model"), py::arg("tokens"), py::arg("answer"), py::arg("wrong"), py::arg("head"),
        py::arg("mode") = "zero", py::arg("reference") = py::none(), py::arg("seed") = 0);

  // ---- IOI
  py::class_<IOIPrompt>(m, "IOIPrompt")
      .def_readwrite("text", &IOIPrompt::text)
      .def_readwrite("corrupted", &IOIPrompt::corrupted)
      .def_readwrite("io", &IOIPrompt::io)
      .def_readwrite("s", &IOIPrompt::s)
      .def_readwrite("order", &IOIPrompt::order)
      .def_readwrite("template_index", &IOIPrompt::template_index)
      .def_readwrite("tokens", &IOIPrompt::tokens)
      .def_readwrite("corrupted_tokens", &IOIPrompt::corrupted_tokens)
      .def_readwrite("io_token", &IOIPrompt::io_token)
      .def_readwrite("s_token", &IOIPrompt::s_token)
      .def("__repr__", [](const IOIPrompt& p) { return "IOIPrompt(" + json(p.text).dump() + ", io=" + p.io + ")"; });
  m.def("ioi_templates", &ioi_templates);
  m.def("make_ioi_dataset", &make_ioi_dataset, py::arg("tokenizer"), py::arg("n"), py::arg("seed") = 0,
        py::arg("prepend_bos") = true);
  m.def("evaluate_ioi",
        [](HookedTransformer& t, const std::vector<IOIPrompt>& prompts) {
          IOIResult r;
          {
            py::gil_scoped_release nogil;
            r = evaluate_ioi(t, prompts);
          }
          py::dict d;
          d["logit_diffs"] = r.logit_diffs;
          d["corrupted_logit_diffs"] = r.corrupted_logit_diffs;
          d["mean_logit_diff"] = r.mean_logit_diff;
          d["mean_corrupted_logit_diff"] = r.mean_corrupted_logit_diff;
          d["accuracy"] = r.accuracy;
          return d;
        },
        py::arg("model"), py::arg("prompts"));

  // ---- training lab: train_<recipe>(settings_json, run_dir, resume) and recipe_defaults(name)
  static std::map<std::string, std::string> defaults;
  bind_recipe<GrokkingConfig>(m, "grokking", run_grokking, defaults);
  bind_recipe<InductionConfig>(m, "induction", run_induction, defaults);
  bind_recipe<SuperpositionConfig>(m, "superposition", run_superposition, defaults);
  bind_recipe<AdditionConfig>(m, "addition", run_addition, defaults);
  bind_recipe<LmConfig>(m, "lm", run_lm, defaults);
  m.def("recipe_defaults",
        [](const std::string& name) {
          auto it = defaults.find(name);
          if (it == defaults.end())
            throw Error("unknown recipe \"" + name + "\" (grokking, induction, superposition, addition, lm)");
          return it->second;
        },
        py::arg("name"));
  m.def("list_checkpoints", &list_checkpoints, py::arg("run_dir"));
  m.def("checkpoint_dir", &checkpoint_dir, py::arg("run_dir"), py::arg("step"));
}

}  // namespace mechlens::python
