// Bindings of the engine: loading, forward passes, caches, hooks, weights, tokenizers,
// generation and checkpoints. Tensors cross as torch.Tensor objects sharing storage.
#include <pybind11/functional.h>
#include <pybind11/stl.h>

#include "mechlens/core/error.h"
#include "mechlens/loading/load_model.h"
#include "mechlens/model/generate.h"
#include "mechlens/model/hook_names.h"
#include "mechlens/tokenize/tokenizer.h"
#include "python/src/bindings.h"

namespace mechlens::python {

namespace {

// TL's hook functions: fn(activation, hook) -> replacement tensor, or None to keep the
// activation (in-place edits of it still reach downstream).
ForwardHook forward_hook(py::function fn) {
  auto f = keep(std::move(fn));
  return [f](const at::Tensor& x, const HookPoint& hp) -> at::Tensor {
    py::gil_scoped_acquire gil;
    py::object r = (*f)(x, py::cast(&hp, py::return_value_policy::reference));
    if (r.is_none()) return x;
    if (!THPVariable_Check(r.ptr()))
      throw py::type_error("the forward hook on " + hp.name() + " returned " +
                           std::string(py::str(r.get_type().attr("__name__"))) + ", not a tensor or None");
    return THPVariable_Unpack(r.ptr());
  };
}

BackwardHook backward_hook(py::function fn) {
  auto f = keep(std::move(fn));
  return [f](const at::Tensor& g, const HookPoint& hp) -> std::optional<at::Tensor> {
    py::gil_scoped_acquire gil;
    py::object r = (*f)(g, py::cast(&hp, py::return_value_policy::reference));
    if (r.is_none()) return std::nullopt;
    if (!THPVariable_Check(r.ptr()))
      throw py::type_error("the backward hook on " + hp.name() + " returned " +
                           std::string(py::str(r.get_type().attr("__name__"))) + ", not a tensor or None");
    return THPVariable_Unpack(r.ptr());
  };
}

// Hook names must exist under the model's config: a typo is an error, not a no-op.
void check_names(const HookedTransformer& m, const std::vector<std::string>& names) {
  for (const auto& n : names)
    if (!m.hook(n))
      throw Error("no hook point named " + n + " in this model (see model.hook_dict; some need "
                  "set_use_attn_result / set_use_split_qkv_input / set_use_hook_mlp_in / set_use_attn_in)");
}

ForwardOptions forward_options(int start_at_layer, int stop_at_layer, bool input_is_residual,
                               const std::optional<at::Tensor>& attention_mask = std::nullopt) {
  ForwardOptions o;
  if (attention_mask) o.attention_mask = *attention_mask;
  o.start_at_layer = start_at_layer;
  o.stop_at_layer = stop_at_layer;
  o.input_is_residual = input_is_residual || start_at_layer > 0;
  return o;
}

int layer_of(const std::string& name) {
  if (name.rfind("blocks.", 0) != 0) return -1;
  return std::stoi(name.substr(7));
}

}  // namespace

void bind_model(py::module_& m) {
  m.def("act_name", &act_name, py::arg("name"), py::arg("layer") = -1, py::arg("layer_type") = "");
  m.def("param_name", &param_name, py::arg("name"), py::arg("layer") = -1, py::arg("layer_type") = "");

  py::class_<HookPoint, std::unique_ptr<HookPoint, py::nodelete>>(m, "HookPoint")
      .def_property_readonly("name", &HookPoint::name)
      .def("layer", [](const HookPoint& h) {
        int l = layer_of(h.name());
        if (l < 0) throw Error(h.name() + " is not in a block");
        return l;
      })
      .def("__repr__", [](const HookPoint& h) { return "<HookPoint " + h.name() + ">"; });

  py::class_<ActivationCache>(m, "Cache")
      .def(py::init<>())
      .def("__getitem__", [](const ActivationCache& c, const std::string& n) { return c.at(n); })
      .def("__contains__", &ActivationCache::contains)
      .def("__len__", &ActivationCache::size)
      .def("names", [](const ActivationCache& c) { return c.names(); })
      .def("set", &ActivationCache::set);

  py::class_<Tokenizer>(m, "Tokenizer")
      .def("encode", [](const Tokenizer& t, const std::string& s, bool bos) { return t.encode(s, bos); },
           py::arg("text"), py::arg("prepend_bos") = false)
      .def("decode", &Tokenizer::decode)
      .def("piece", &Tokenizer::piece)
      .def("to_str_tokens", &Tokenizer::to_str_tokens)
      .def_property_readonly("vocab_size", &Tokenizer::vocab_size)
      .def_readonly("bos_id", &Tokenizer::bos_id)
      .def_readonly("eos_id", &Tokenizer::eos_id)
      .def_readonly("kind", &Tokenizer::kind);
  m.def("load_tokenizer", &load_tokenizer, py::arg("folder"));
  m.def("gpt2_tokenizer", &gpt2_tokenizer);
  m.def("model_tokenizer", &model_tokenizer, py::arg("folder"), py::arg("d_vocab"));

  py::class_<HookedTransformer>(m, "Model")
      .def_static(
          "load",
          [](const std::string& path, const std::string& processing, const std::string& dtype,
             const std::string& device) {
            LoadOptions o;
            o.processing = ProcessingOptions::parse(processing);
            o.dtype = dtype;
            o.device = device;
            return load_model(path, o);
          },
          py::arg("path"), py::arg("processing") = "none", py::arg("dtype") = "", py::arg("device") = "cpu")
      .def_static(
          "random",
          [](const std::string& cfg_json, uint64_t seed) {
            ModelConfig cfg = ModelConfig::from_json(nlohmann::json::parse(cfg_json), "config");
            cfg.validate("config");
            return std::make_unique<HookedTransformer>(cfg, random_state_dict(cfg, seed));
          },
          py::arg("cfg_json"), py::arg("seed") = 0)
      .def_property_readonly("cfg_json", [](const HookedTransformer& t) { return t.cfg().to_json().dump(); })
      .def_property_readonly("processing", &HookedTransformer::processing)
      .def("forward",
           [](HookedTransformer& t, const at::Tensor& x, int start, int stop, bool resid,
              std::optional<at::Tensor> mask) { return t.forward(x, forward_options(start, stop, resid, mask)); },
           py::arg("input"), py::arg("start_at_layer") = 0, py::arg("stop_at_layer") = -1,
           py::arg("input_is_residual") = false, py::arg("attention_mask") = py::none(),
           py::call_guard<py::gil_scoped_release>())
      .def("run_with_cache",
           [](HookedTransformer& t, const at::Tensor& x, std::optional<std::vector<std::string>> names, int start,
              int stop, std::optional<at::Tensor> mask) {
             NameFilter f = all_names();
             if (names) {
               check_names(t, *names);
               f = names_in(*names);
             }
             return t.run_with_cache(x, f, forward_options(start, stop, false, mask));
           },
           py::arg("input"), py::arg("names") = py::none(), py::arg("start_at_layer") = 0,
           py::arg("stop_at_layer") = -1, py::arg("attention_mask") = py::none(),
           py::call_guard<py::gil_scoped_release>())
      .def("add_hook",
           [](HookedTransformer& t, const std::vector<std::string>& names, py::function fn, const std::string& dir,
              bool permanent) {
             check_names(t, names);
             if (dir == "fwd") t.add_hook(names_in(names), forward_hook(std::move(fn)), permanent);
             else if (dir == "bwd") t.add_backward_hook(names_in(names), backward_hook(std::move(fn)), permanent);
             else throw Error("hook direction must be \"fwd\" or \"bwd\", not \"" + dir + "\"");
           },
           py::arg("names"), py::arg("fn"), py::arg("dir") = "fwd", py::arg("permanent") = false)
      .def("reset_hooks", &HookedTransformer::reset_hooks, py::arg("including_permanent") = false)
      .def("hook_names", &HookedTransformer::hook_names)
      .def("hook",
           [](const HookedTransformer& t, const std::string& n) {
             HookPoint* h = t.hook(n);
             if (!h) throw Error("no hook point named " + n);
             return h;
           },
           py::return_value_policy::reference_internal)
      .def("set_optional_hooks", &HookedTransformer::set_optional_hooks, py::arg("use_attn_result"),
           py::arg("use_split_qkv_input"), py::arg("use_hook_mlp_in"), py::arg("use_attn_in"))
      .def("state_dict", &HookedTransformer::state_dict)
      .def("parameters", &HookedTransformer::parameters)
      .def("set_requires_grad", &HookedTransformer::set_requires_grad, py::arg("on"),
           py::arg("except") = std::vector<std::string>{})
      .def("load_state_dict", &HookedTransformer::load_state_dict, py::arg("state_dict"), py::arg("processing"))
      .def("process_weights",
           [](HookedTransformer& t, const std::string& processing) {
             ProcessingOptions o = ProcessingOptions::parse(processing);
             ModelConfig cfg = t.cfg();
             StateDict sd;
             for (const auto& [k, v] : t.state_dict()) sd[k] = v.clone();
             process_weights(cfg, sd, o);
             t.reset(cfg, sd, o.describe());
           },
           py::arg("processing"))
      .def("unembed", &HookedTransformer::unembed, py::arg("resid"), py::arg("columns") = std::vector<int64_t>{})
      .def("check_tokens", &HookedTransformer::check_tokens, py::arg("tokens"), py::arg("past") = 0)
      .def("save", [](const HookedTransformer& t, const std::string& dir) { save_checkpoint(t, dir); })
      .def("generate",
           [](HookedTransformer& t, const at::Tensor& tokens, int max_new, double temperature, int top_k,
              double top_p, uint64_t seed, bool use_kv, int64_t stop_token) {
             GenerateOptions o;
             o.max_new_tokens = max_new, o.temperature = temperature, o.top_k = top_k, o.top_p = top_p;
             o.seed = seed, o.use_kv_cache = use_kv, o.stop_token = stop_token;
             return generate(t, tokens, o);
           },
           py::arg("tokens"), py::arg("max_new_tokens") = 10, py::arg("temperature") = 0.0, py::arg("top_k") = 0,
           py::arg("top_p") = 1.0, py::arg("seed") = 0, py::arg("use_kv_cache") = true, py::arg("stop_token") = -1,
           py::call_guard<py::gil_scoped_release>());

  m.def("loss",
        [](const at::Tensor& logits, const at::Tensor& tokens, std::optional<at::Tensor> mask) {
          return HookedTransformer::loss(logits, tokens, mask ? *mask : at::Tensor());
        },
        py::arg("logits"), py::arg("tokens"), py::arg("attention_mask") = py::none());
  m.def("preset_config", [](const std::string& name) { return ModelConfig::preset(name).to_json().dump(); },
        py::arg("name"));
  m.def("per_token_loss",
        [](const at::Tensor& logits, const at::Tensor& tokens, std::optional<at::Tensor> mask) {
          return HookedTransformer::per_token_loss(logits, tokens, mask ? *mask : at::Tensor());
        },
        py::arg("logits"), py::arg("tokens"), py::arg("attention_mask") = py::none());
}

}  // namespace mechlens::python
