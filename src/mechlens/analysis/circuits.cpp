#include "mechlens/analysis/circuits.h"

#include "mechlens/core/error.h"
#include "mechlens/model/hook_names.h"

namespace mechlens {

namespace {
// Stack a per-layer parameter into [L, heads, ...], repeating kv heads if needed.
at::Tensor stacked(const HookedTransformer& m, const std::string& name, bool kv) {
  const auto& c = m.cfg();
  std::vector<at::Tensor> ts;
  for (int l = 0; l < c.n_layers; ++l) {
    at::Tensor t = m.state_dict().at(param_name(name, l)).to(at::kFloat);
    if (kv && c.kv_heads() != c.n_heads) t = at::repeat_interleave(t, c.n_heads / c.kv_heads(), 0);
    ts.push_back(t);
  }
  return at::stack(ts, 0);
}
}  // namespace

FactoredMatrix qk_circuit(const HookedTransformer& m) {
  return {stacked(m, "W_Q", false), stacked(m, "W_K", true).transpose(-1, -2)};
}

FactoredMatrix ov_circuit(const HookedTransformer& m) { return {stacked(m, "W_V", true), stacked(m, "W_O", false)}; }

FactoredMatrix full_qk_circuit(const HookedTransformer& m) {
  at::Tensor W_E = m.state_dict().at(param_name("W_E")).to(at::kFloat);
  return qk_circuit(m).left_mul(W_E).right_mul(W_E.t());
}

FactoredMatrix full_ov_circuit(const HookedTransformer& m) {
  at::Tensor W_E = m.state_dict().at(param_name("W_E")).to(at::kFloat);
  at::Tensor W_U = m.state_dict().at(param_name("W_U")).to(at::kFloat);
  return ov_circuit(m).left_mul(W_E).right_mul(W_U);
}

at::Tensor all_composition_scores(const HookedTransformer& m, const std::string& mode) {
  FactoredMatrix left = ov_circuit(m);
  FactoredMatrix right = mode == "Q" ? qk_circuit(m) : mode == "K" ? qk_circuit(m).T() : mode == "V" ? ov_circuit(m)
                                                                                                   : throw Error("composition mode must be Q, K or V");
  const int64_t L = m.cfg().n_layers, H = m.cfg().n_heads;
  // Broadcast [L, H, 1, 1, ...] against [1, 1, L, H, ...].
  FactoredMatrix l(left.A().view({L, H, 1, 1, left.ldim(), left.mdim()}),
                   left.B().view({L, H, 1, 1, left.mdim(), left.rdim()}));
  FactoredMatrix r(right.A().view({1, 1, L, H, right.ldim(), right.mdim()}),
                   right.B().view({1, 1, L, H, right.mdim(), right.rdim()}));
  at::Tensor lc = l.collapse_l(), rc = r.collapse_r();
  auto fro = [](const at::Tensor& t) { return t.pow(2).sum({-2, -1}).sqrt(); };
  at::Tensor scores = fro(at::matmul(lc, rc)) / fro(lc) / fro(rc);  // [L, H, L, H]
  at::Tensor li = at::arange(L).view({L, 1, 1, 1}), ri = at::arange(L).view({1, 1, L, 1});
  return at::where(li < ri, scores, at::zeros_like(scores));
}

std::vector<CompositionPair> strongest_compositions(const at::Tensor& scores, int64_t n) {
  if (scores.dim() != 4) throw Error("composition scores must be [L, H, L, H]");
  const int64_t H = scores.size(1), LH = scores.size(0) * H;
  at::Tensor flat = scores.to(at::kFloat).reshape(-1);
  auto [v, idx] = flat.topk(std::min<int64_t>(n, flat.numel()));
  std::vector<CompositionPair> out;
  for (int64_t i = 0; i < idx.numel(); ++i) {
    const int64_t k = idx[i].item<int64_t>(), left = k / LH, right = k % LH;
    out.push_back({static_cast<int>(left / H), left % H, static_cast<int>(right / H), right % H, v[i].item<double>()});
  }
  return out;
}

std::vector<TokenScore> top_tokens(const at::Tensor& scores, int64_t n, bool largest) {
  n = std::min<int64_t>(n, scores.numel());
  auto [v, i] = scores.to(at::kFloat).reshape(-1).topk(n, -1, largest);
  std::vector<TokenScore> out;
  for (int64_t k = 0; k < n; ++k) out.push_back({i[k].item<int64_t>(), v[k].item<double>()});
  return out;
}

SingularDirectionTokens singular_vector_tokens(const FactoredMatrix& circuit, int64_t k, int64_t n) {
  if (circuit.A().dim() != 2) throw Error("singular_vector_tokens takes one circuit (index layer and head first)");
  auto [U, S, V] = circuit.svd();
  if (k < 0 || k >= S.size(0)) throw Error("singular vector index out of range");
  at::Tensor u = U.select(1, k), v = V.select(1, k);
  // U[:, k] and V[:, k] are defined up to a common sign: make V's largest |entry| positive.
  if (v[v.abs().argmax()].item<double>() < 0) u = -u, v = -v;
  return {S[k].item<double>(), top_tokens(u, n), top_tokens(v, n)};
}

at::Tensor neuron_logit_effects(const HookedTransformer& m, int layer) {
  if (m.cfg().attn_only) throw Error("the model has no MLP neurons");
  if (layer < 0 || layer >= m.cfg().n_layers) throw Error("layer out of range");
  return at::matmul(m.state_dict().at(param_name("W_out", layer)).to(at::kFloat),
                    m.state_dict().at(param_name("W_U")).to(at::kFloat));
}

at::Tensor copying_score(const FactoredMatrix& circuit) {
  at::Tensor ev = circuit.eigenvalues();  // [..., m] complex
  return at::real(ev).sum(-1) / ev.abs().sum(-1);
}

at::Tensor copying_scores(const HookedTransformer& m) { return copying_score(full_ov_circuit(m)); }

at::Tensor circuit_diagonal(const FactoredMatrix& circuit) {
  return (circuit.A() * circuit.B().transpose(-1, -2)).sum(-1);  // diag(A B) without forming A B
}

HeadCircuits head_circuits(const HookedTransformer& m, int layer, int64_t head, int64_t top_n, int64_t n_directions) {
  const auto& c = m.cfg();
  if (layer < 0 || layer >= c.n_layers || head < 0 || head >= c.n_heads)
    throw Error("head " + std::to_string(layer) + "." + std::to_string(head) + " is out of range");
  FactoredMatrix ov = ov_circuit(m)[layer][head], qk = qk_circuit(m)[layer][head];
  FactoredMatrix full_ov = full_ov_circuit(m)[layer][head];
  HeadCircuits r;
  r.ov_singular_values = ov.S();
  r.qk_singular_values = qk.S();
  r.ov_norm = ov.norm().item<double>();
  r.qk_norm = qk.norm().item<double>();
  r.copying_score = copying_score(full_ov).item<double>();
  r.top_self_copied = top_tokens(circuit_diagonal(full_ov), top_n);
  for (int64_t k = 0; k < std::min<int64_t>(n_directions, c.d_head); ++k)
    r.full_ov_directions.push_back(singular_vector_tokens(full_ov, k, top_n));
  return r;
}

}  // namespace mechlens
