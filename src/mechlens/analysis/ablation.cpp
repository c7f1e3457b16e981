#include "mechlens/analysis/ablation.h"

#include <ATen/CPUGeneratorImpl.h>

#include <map>

#include "mechlens/analysis/residual.h"
#include "mechlens/core/error.h"
#include "mechlens/model/hook_names.h"

namespace mechlens {

AblationTarget AblationTarget::parse(const std::string& spec) {
  AblationTarget t;
  auto num = [&](const std::string& s) -> int64_t {
    try {
      size_t used = 0;
      int64_t v = std::stoll(s, &used);
      if (used != s.size() || v < 0) throw std::invalid_argument("x");
      return v;
    } catch (const std::exception&) {
      throw Error("bad ablation target \"" + spec + "\" (use L.H for a head, neuron:L.N, attn:L or mlp:L)");
    }
  };
  std::string body = spec;
  auto colon = spec.find(':');
  if (colon != std::string::npos) t.kind = spec.substr(0, colon), body = spec.substr(colon + 1);
  else t.kind = "head";
  auto dot = body.find('.');
  if (t.kind == "head" || t.kind == "neuron") {
    if (dot == std::string::npos) num("");
    t.layer = static_cast<int>(num(body.substr(0, dot)));
    t.index = num(body.substr(dot + 1));
  } else if (t.kind == "attn" || t.kind == "mlp") {
    t.layer = static_cast<int>(num(body));
  } else {
    num("");
  }
  return t;
}

std::string AblationTarget::hook_name() const {
  if (kind == "head") return act_name("z", layer);
  if (kind == "neuron") return act_name("post", layer);
  if (kind == "attn") return act_name("attn_out", layer);
  return act_name("mlp_out", layer);
}

std::string AblationTarget::label() const {
  if (kind == "head") return "L" + std::to_string(layer) + "H" + std::to_string(index);
  if (kind == "neuron") return "L" + std::to_string(layer) + "N" + std::to_string(index);
  return std::to_string(layer) + (kind == "attn" ? "_attn_out" : "_mlp_out");
}

std::vector<ForwardHookSpec> ablation_hooks(HookedTransformer& m, const std::vector<AblationTarget>& targets,
                                            const AblationOptions& o, int64_t batch) {
  const auto& c = m.cfg();
  if (o.mode != "zero" && o.mode != "mean" && o.mode != "resample")
    throw Error("ablation mode must be zero, mean or resample");
  for (const auto& t : targets) {
    if (t.layer < 0 || t.layer >= c.n_layers) throw Error("ablation target " + t.label() + ": layer out of range");
    if (t.kind == "head" && (t.index < 0 || t.index >= c.n_heads)) throw Error("ablation target " + t.label() + ": no such head");
    if ((t.kind == "neuron" || t.kind == "mlp") && c.attn_only) throw Error("the model has no MLPs");
    if (t.kind == "neuron" && (t.index < 0 || t.index >= c.d_mlp)) throw Error("ablation target " + t.label() + ": no such neuron");
  }
  // Reference activations for mean / resample ablation.
  std::map<std::string, at::Tensor> ref;
  if (o.mode != "zero") {
    if (!o.reference.defined()) throw Error(o.mode + " ablation needs reference tokens");
    std::vector<std::string> names;
    for (const auto& t : targets) names.push_back(t.hook_name());
    at::NoGradGuard no_grad;
    auto [_, cache] = m.run_with_cache(o.reference, names_in(names));
    for (const auto& n : names) ref[n] = cache[n];
  }
  std::map<std::string, std::vector<AblationTarget>> by_hook;
  for (const auto& t : targets) by_hook[t.hook_name()].push_back(t);
  std::vector<ForwardHookSpec> hooks;
  for (auto& [name, ts] : by_hook) {
    at::Tensor replacement;  // broadcastable to the activation (for mean), or per-row (resample)
    if (o.mode == "mean") {
      replacement = ref[name].mean(0, true);  // mean over the reference batch, per position
    } else if (o.mode == "resample") {
      const at::Tensor& r = ref[name];
      auto gen = at::make_generator<at::CPUGeneratorImpl>(o.seed);
      at::Tensor rows = at::randint(r.size(0), {batch}, gen, at::kLong);
      replacement = r.index_select(0, rows.to(r.device()));
    }
    hooks.push_back({names_in({name}), [ts, replacement, mode = o.mode](const at::Tensor& a, const HookPoint&) {
                       at::Tensor y = a.clone();
                       for (const auto& t : ts) {
                         at::Tensor dst = t.kind == "head" ? y.select(2, t.index)
                                          : t.kind == "neuron" ? y.select(-1, t.index)
                                                               : y;
                         if (mode == "zero") {
                           dst.zero_();
                           continue;
                         }
                         if (replacement.size(1) != a.size(1))
                           throw Error("reference tokens must have as many positions as the input");
                         at::Tensor src = t.kind == "head" ? replacement.select(2, t.index)
                                          : t.kind == "neuron" ? replacement.select(-1, t.index)
                                                               : replacement;
                         dst.copy_(src.expand_as(dst));
                       }
                       return y;
                     }});
  }
  return hooks;
}

namespace {
struct Direct {
  at::Tensor heads;  // [L, H]
  at::Tensor mlps;   // [L]
  double logit_diff;
};
Direct direct_effects(HookedTransformer& m, const at::Tensor& tokens, const std::vector<int64_t>& answer,
                      const std::vector<int64_t>& wrong, const std::vector<ForwardHookSpec>& hooks) {
  at::NoGradGuard no_grad;
  ActivationCache cache;
  std::vector<ForwardHookSpec> all = hooks;
  // Record after the ablation hooks (they were added first on the same hook points).
  all.push_back({all_names(), [&cache](const at::Tensor& a, const HookPoint& hp) {
                   cache.set(hp.name(), a.detach());
                   return a;
                 }});
  at::Tensor logits = m.run_with_hooks(tokens, all);
  ResidualAnalysis ra(m, cache);
  const auto& c = m.cfg();
  Direct d;
  auto heads = ra.stack_head_results(-1, false, -1);
  d.heads = ra.exact_logit_attrs(heads.stack, answer, wrong, -1).attrs.mean(1).view({c.n_layers, c.n_heads});
  if (!c.attn_only) {
    auto mlps = ra.decompose_resid(-1, false, false, -1, false, "mlp");
    d.mlps = ra.exact_logit_attrs(mlps.stack, answer, wrong, -1).attrs.mean(1);
  } else {
    d.mlps = at::zeros({c.n_layers});
  }
  at::Tensor last = logits.select(1, logits.size(1) - 1);
  at::Tensor a = at::tensor(answer, at::kLong), w = at::tensor(wrong, at::kLong);
  at::Tensor la = answer.size() == 1 ? last.select(1, answer[0]) : last.gather(1, a.unsqueeze(1)).squeeze(1);
  at::Tensor lw = wrong.size() == 1 ? last.select(1, wrong[0]) : last.gather(1, w.unsqueeze(1)).squeeze(1);
  d.logit_diff = (la - lw).mean().item<double>();
  return d;
}
}  // namespace

SelfRepairReport self_repair(HookedTransformer& m, const at::Tensor& tokens, const std::vector<int64_t>& answer,
                             const std::vector<int64_t>& wrong, const AblationTarget& head, const AblationOptions& o) {
  if (head.kind != "head") throw Error("self-repair ablates one attention head (L.H)");
  if (answer.empty() || wrong.empty()) throw Error("self-repair needs an answer and a wrong token");
  m.check_tokens(tokens);
  AblationOptions opts = o;
  if (!opts.reference.defined()) opts.reference = tokens;
  SelfRepairReport r;
  r.ablated = head;
  r.mode = opts.mode;
  Direct before = direct_effects(m, tokens, answer, wrong, {});
  Direct after = direct_effects(m, tokens, answer, wrong, ablation_hooks(m, {head}, opts, tokens.size(0)));
  r.logit_diff_clean = before.logit_diff;
  r.logit_diff_ablated = after.logit_diff;
  r.direct_before = before.heads;
  r.direct_after = after.heads;
  r.mlp_before = before.mlps;
  r.mlp_after = after.mlps;
  // The ablated head's direct effect that was removed; the actual change in the logit
  // difference; what the rest of the model made up is the difference.
  const double removed = (before.heads[head.layer][head.index] - after.heads[head.layer][head.index]).item<double>();
  r.ablated_direct_effect = before.heads[head.layer][head.index].item<double>();
  const double actual_drop = r.logit_diff_clean - r.logit_diff_ablated;
  r.self_repair = removed - actual_drop;
  for (int l = 0; l < m.cfg().n_layers; ++l)
    for (int h = 0; h < m.cfg().n_heads; ++h) r.head_labels.push_back("L" + std::to_string(l) + "H" + std::to_string(h));
  return r;
}

}  // namespace mechlens
