#include "mechlens/analysis/path_patching.h"

#include <map>

#include "mechlens/core/error.h"
#include "mechlens/model/hook_names.h"

namespace mechlens {

Receiver Receiver::parse(const std::string& spec) {
  Receiver r;
  auto a = spec.find('.'), b = spec.rfind('.');
  try {
    if (a == std::string::npos || b == a) throw std::invalid_argument("x");
    r.layer = std::stoi(spec.substr(0, a));
    r.head = std::stoll(spec.substr(a + 1, b - a - 1));
    r.input = spec.substr(b + 1);
  } catch (const std::exception&) {
    throw Error("bad receiver \"" + spec + "\" (use L.H.q, L.H.k or L.H.v, or 'logits')");
  }
  if (r.input != "q" && r.input != "k" && r.input != "v") throw Error("receiver input must be q, k or v: " + spec);
  return r;
}

PathPatchResult path_patch(HookedTransformer& m, ActivationPatching& ap, const std::vector<Receiver>& receivers) {
  const auto& c = m.cfg();
  const int L = c.n_layers;
  const int64_t H = c.n_heads;
  for (const auto& r : receivers) {
    const int64_t heads = r.input == "q" ? H : c.kv_heads();
    if (r.layer < 0 || r.layer >= L || r.head < 0 || r.head >= heads) throw Error("receiver head out of range");
  }
  // Every run starts from the corrupted residual stream entering layer 0.
  const at::Tensor resid0 = ap.corrupted_cache()[act_name("resid_pre", 0)];
  const int64_t b = resid0.size(0), S = resid0.size(1);
  int max_layer = L;  // senders must be in an earlier layer than some receiver
  if (!receivers.empty()) {
    max_layer = 0;
    for (const auto& r : receivers) max_layer = std::max(max_layer, r.layer);
  }
  const bool norm = ap.metric().kind == "logit_diff_norm";
  PathPatchResult res;
  res.clean_metric = norm ? 1.0 : ap.clean_metric();
  res.corrupted_metric = norm ? 0.0 : ap.corrupted_metric();
  res.grid = at::full({L, H}, res.corrupted_metric);
  for (int l = 0; l < L; ++l)
    for (int64_t h = 0; h < H; ++h) res.sender_labels.push_back("L" + std::to_string(l) + "H" + std::to_string(h));
  if (receivers.empty()) res.receivers = "logits";
  for (const auto& r : receivers)
    res.receivers += (res.receivers.empty() ? "" : ", ") + std::string("L") + std::to_string(r.layer) + "H" +
                     std::to_string(r.head) + "." + r.input;

  at::NoGradGuard no_grad;
  const std::vector<std::string> z_names = act_names("z", L), mlp_out_names = act_names("mlp_out", L);
  std::vector<std::string> receiver_names;  // the hook of each receiver's input (its q, k or v)
  for (const auto& r : receivers) receiver_names.push_back(act_name(r.input, r.layer));
  std::vector<std::pair<int, int64_t>> senders;
  for (int l = 0; l < max_layer; ++l)
    for (int64_t h = 0; h < H; ++h) senders.push_back({l, h});
  const size_t per_chunk = std::max<int64_t>(1, ap.token_budget / std::max<int64_t>(1, b * S));
  for (size_t start = 0; start < senders.size(); start += per_chunk) {
    const size_t n = std::min(per_chunk, senders.size() - start);
    at::Tensor x0 = resid0.repeat({static_cast<int64_t>(n), 1, 1});
    ForwardOptions fo;
    fo.input_is_residual = true;
    // Step 1: every head's z and every MLP output frozen at the corrupted run's values,
    // except the sender, which gets its clean z. Record the receivers' inputs.
    std::vector<ForwardHookSpec> freeze;
    for (int l = 0; l < L; ++l) {
      const std::string& zname = z_names[l];
      at::Tensor zc = ap.corrupted_cache()[zname].repeat({static_cast<int64_t>(n), 1, 1, 1});
      at::Tensor zclean = ap.clean_cache()[zname];
      std::vector<std::pair<size_t, int64_t>> here;  // (element, head)
      for (size_t k = 0; k < n; ++k)
        if (senders[start + k].first == l) here.push_back({k, senders[start + k].second});
      freeze.push_back({names_in({zname}), [zc, zclean, here, b](const at::Tensor&, const HookPoint&) {
                          at::Tensor y = zc.clone();
                          for (auto [k, h] : here) y.narrow(0, k * b, b).select(2, h).copy_(zclean.select(2, h));
                          return y;
                        }});
      if (!c.attn_only) {
        const std::string& mname = mlp_out_names[l];
        at::Tensor mc = ap.corrupted_cache()[mname].repeat({static_cast<int64_t>(n), 1, 1});
        freeze.push_back({names_in({mname}), [mc](const at::Tensor&, const HookPoint&) { return mc; }});
      }
    }
    std::map<std::string, at::Tensor> recorded;
    for (const auto& name : receiver_names) {
      freeze.insert(freeze.begin(), {names_in({name}), [&recorded, name](const at::Tensor& a, const HookPoint&) {
                                       recorded[name] = a.clone();
                                       return a;
                                     }});
    }
    at::Tensor logits = m.run_with_hooks(x0, freeze, {}, fo);
    std::vector<double> vals(n);
    if (receivers.empty()) {
      for (size_t k = 0; k < n; ++k) vals[k] = ap.metric_of_logits(logits.narrow(0, static_cast<int64_t>(k) * b, b));
    } else {
      // Step 2: a free corrupted run where only the receivers' inputs are replaced.
      std::map<std::string, std::vector<int64_t>> heads_of;
      for (size_t i = 0; i < receivers.size(); ++i) heads_of[receiver_names[i]].push_back(receivers[i].head);
      std::vector<ForwardHookSpec> patch;
      for (auto& [name, heads] : heads_of) {
        at::Tensor src = recorded.at(name);
        patch.push_back({names_in({name}), [src, heads](const at::Tensor& a, const HookPoint&) {
                           at::Tensor y = a.clone();
                           for (int64_t h : heads) y.select(2, h).copy_(src.select(2, h));
                           return y;
                         }});
      }
      at::Tensor out = m.run_with_hooks(x0, patch, {}, fo);
      for (size_t k = 0; k < n; ++k) vals[k] = ap.metric_of_logits(out.narrow(0, static_cast<int64_t>(k) * b, b));
    }
    for (size_t k = 0; k < n; ++k) res.grid[senders[start + k].first][senders[start + k].second] = vals[k];
  }
  return res;
}

}  // namespace mechlens
