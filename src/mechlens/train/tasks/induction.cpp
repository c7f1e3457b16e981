#include "mechlens/train/tasks/induction.h"

#include <cmath>

#include "mechlens/analysis/head_detect.h"
#include "mechlens/core/error.h"
#include "mechlens/core/io.h"
#include "mechlens/loading/load_model.h"
#include "mechlens/train/metrics_store.h"
#include "mechlens/train/curves.h"
#include "mechlens/train/recipe_config.h"
#include "mechlens/train/report.h"
#include "mechlens/train/tasks/authors_init.h"

namespace mechlens {

using nlohmann::json;

void InductionConfig::validate(const std::string& where) const {
  if (layers < 1 || layers > 8) fail(where, "layers must lie in 1..8");
  if (d_model < 1 || n_heads < 1 || d_model % n_heads) fail(where, "d_model must be a multiple of n_heads");
  if (vocab < 2) fail(where, "vocab must be >= 2");
  if (seq_len < 8) fail(where, "seq_len must be >= 8");
  if (min_sub < 2 || min_sub > max_sub_len() || 2 * max_sub_len() > seq_len)
    fail(where, "need 2 <= min_sub <= max_sub and 2 * max_sub <= seq_len");
  if (batch < 1) fail(where, "batch must be >= 1");
  if (smooth < 1) fail(where, "smooth must be >= 1");
  trainer_config().validate(where);
}

json InductionConfig::to_json() const {
  return with_common_json(*this, {{"recipe", "induction"}, {"layers", layers}, {"d_model", d_model}, {"n_heads", n_heads},
          {"vocab", vocab}, {"seq_len", seq_len}, {"min_sub", min_sub}, {"max_sub", max_sub_len()},
          {"batch", batch}, {"steps", steps},
          {"betas", {beta1, beta2}}, {"eval_every", eval_every}, {"smooth", smooth}});
}

InductionConfig InductionConfig::from_json(const json& j, const std::string& where) {
  InductionConfig c;
  if (json_get_or<std::string>(j, "recipe", "", where) != "induction") fail(where, "not an induction run's config");
  c.layers = json_get<int>(j, "layers", where);
  c.d_model = json_get<int>(j, "d_model", where);
  c.n_heads = json_get<int>(j, "n_heads", where);
  c.vocab = json_get<int64_t>(j, "vocab", where);
  c.seq_len = json_get<int64_t>(j, "seq_len", where);
  c.min_sub = json_get<int64_t>(j, "min_sub", where);
  c.max_sub = json_get<int64_t>(j, "max_sub", where);
  c.batch = json_get<int64_t>(j, "batch", where);
  c.steps = json_get<int64_t>(j, "steps", where);
  auto b = json_get<std::vector<double>>(j, "betas", where);
  if (b.size() != 2) fail(where, "betas must hold 2 numbers");
  c.beta1 = b[0], c.beta2 = b[1];
  c.eval_every = json_get<int64_t>(j, "eval_every", where);
  c.smooth = json_get<int>(j, "smooth", where);
  read_common_json(c, j, where);
  c.validate(where);
  return c;
}

ModelConfig InductionConfig::model_config() const {
  ModelConfig m;
  m.n_layers = layers, m.d_model = d_model, m.n_heads = n_heads, m.d_head = d_model / n_heads;
  m.d_vocab = static_cast<int>(vocab), m.n_ctx = static_cast<int>(seq_len);
  m.attn_only = true, m.normalization_type = NormType::None, m.positional_embedding_type = PosEmbed::Standard;
  m.original_architecture = "mechlens", m.model_name = "induction-" + std::to_string(layers) + "l";
  return m;
}

TrainerConfig InductionConfig::trainer_config() const {
  TrainerConfig t = common_trainer_config(*this, "induction");
  t.optim.beta1 = beta1, t.optim.beta2 = beta2;
  t.steps = steps, t.eval_every = eval_every, t.log_every = 100;
  return t;
}

StateDict induction_init(const InductionConfig& c) { return authors_init(c.model_config(), c.seed); }

RepeatBatch repeat_batch(const InductionConfig& c, uint64_t seed, int64_t step) {
  // One generator per (seed, step): a resumed run draws the very same batches.
  auto g = step_generator(seed, step, 17);
  const int64_t B = c.batch, S = c.seq_len;
  at::Tensor tokens = at::randint(c.vocab, {B, S}, g, at::kLong);
  at::Tensor L = at::randint(c.min_sub, c.max_sub_len() + 1, {B, 1}, g, at::kLong);
  at::Tensor P = (at::rand({B, 1}, g) * (S - 2 * L + 1)).floor().to(at::kLong);
  at::Tensor pos = at::arange(S, at::kLong).unsqueeze(0);
  at::Tensor second = (pos >= P + L) & (pos < P + 2 * L);
  at::Tensor src = (pos - L).clamp_min(0);
  tokens = at::where(second, tokens.gather(1, src), tokens);
  return {tokens, second & (pos > P + L)};
}

InductionTask::InductionTask(const InductionConfig& cfg) : cfg_(cfg) {
  model_ = std::make_unique<HookedTransformer>(cfg.model_config(), induction_init(cfg), "none");
  model_->set_requires_grad(true, authors_frozen_biases(model_->cfg()));  // no biases, as the toy architecture
}

at::Tensor InductionTask::loss(int64_t step, Metrics&) {
  RepeatBatch b = repeat_batch(cfg_, cfg_.seed, step);
  ForwardOptions o;
  o.fold_embeddings = true;
  at::Tensor nll = HookedTransformer::per_token_loss(model_->forward(b.tokens, o), b.tokens);  // [B, S-1]
  at::Tensor m = b.loss_mask.slice(1, 1).to(at::kFloat);
  return (nll * m).sum() / m.sum();
}

InductionEval induction_eval(HookedTransformer& m, const InductionConfig& c) {
  at::NoGradGuard ng;
  const int64_t half = (c.seq_len - 1) / 2, n = 1 + 2 * half;
  auto g = at::make_generator<at::CPUGeneratorImpl>(c.seed + 2000);
  at::Tensor X = at::randint(c.vocab, {64, half}, g, at::kLong);
  at::Tensor first = at::randint(c.vocab, {64, 1}, g, at::kLong);
  at::Tensor seqs = at::cat({first, X, X}, 1);  // [64, 1 + 2 half]
  InductionEval e;
  e.induction = induction_scores(m, seqs);
  // Previous-token score with the head detector (share of attention on t -> t-1), averaged.
  e.prev_token = at::zeros_like(e.induction);
  const int64_t k = 8;
  for (int64_t i = 0; i < k; ++i) {
    at::Tensor t = seqs[i];
    e.prev_token += detect_head(m, t, previous_token_pattern(t)) / static_cast<double>(k);
  }
  at::Tensor nll = HookedTransformer::per_token_loss(m.forward(seqs), seqs);  // [64, n-1]
  e.first_half_loss = nll.slice(1, 0, half).mean().item<double>();
  e.second_half_loss = nll.slice(1, half + 1, n - 1).mean().item<double>();
  return e;
}

void InductionTask::evaluate(int64_t, Metrics& m) {
  InductionEval e = induction_eval(*model_, cfg_);
  for (int l = 0; l < cfg_.layers; ++l) {
    m["induction_best_L" + std::to_string(l)] = e.induction[l].max().item<double>();
    m["prev_token_best_L" + std::to_string(l)] = e.prev_token[l].max().item<double>();
  }
  m["repeat_loss_first_half"] = e.first_half_loss;
  m["repeat_loss_second_half"] = e.second_half_loss;
}

void InductionTask::save_checkpoint(const std::string& dir) { mechlens::save_checkpoint(*model_, dir); }

// ---- analysis ---------------------------------------------------------------------------

namespace {
json tensor_rows(const at::Tensor& t) {
  json out = json::array();
  for (int64_t i = 0; i < t.size(0); ++i) {
    json row = json::array();
    for (int64_t j = 0; j < t.size(1); ++j) row.push_back(std::round(t[i][j].item<double>() * 1e4) / 1e4);
    out.push_back(row);
  }
  return out;
}
}  // namespace

json analyze_induction(const std::string& run_dir) {
  const std::string cfg_path = join_path(run_dir, "config.json");
  InductionConfig cfg = InductionConfig::from_json(read_json_file(cfg_path), cfg_path);
  std::vector<int64_t> steps = list_checkpoints(run_dir);
  if (steps.empty()) fail(run_dir, "no checkpoints to analyse (checkpoints/step_N)");
  MetricsStore store(join_path(run_dir, "metrics.sqlite"));
  store.clear_analysis("induction.");
  InductionEval last;
  for (int64_t s : steps) {
    auto model = load_model(checkpoint_dir(run_dir, s));
    if (model->cfg().n_layers != cfg.layers || model->cfg().d_vocab != cfg.vocab)
      fail(checkpoint_dir(run_dir, s), "checkpoint does not match config.json");
    InductionEval e = induction_eval(*model, cfg);
    for (int l = 0; l < cfg.layers; ++l) {
      store.set_analysis(s, "induction.induction_best_L" + std::to_string(l), e.induction[l].max().item<double>());
      store.set_analysis(s, "induction.prev_token_best_L" + std::to_string(l), e.prev_token[l].max().item<double>());
    }
    store.set_analysis_json(s, "induction.induction_scores", tensor_rows(e.induction).dump());
    store.set_analysis_json(s, "induction.prev_token_scores", tensor_rows(e.prev_token).dump());
    // In-context learning score (Olsson et al.): loss late in the context minus early.
    store.set_analysis(s, "induction.icl_score", e.second_half_loss - e.first_half_loss);
    last = e;
  }

  // The phase change from the smoothed training loss.
  auto loss = store.series("train_loss");
  const int w = cfg.smooth;
  Series sm = moving_average(loss, w);
  json t50 = nullptr, plateau = nullptr, final_loss = nullptr;
  auto [steepest, steepest_step] = steepest_drop(sm, w);
  if (!sm.empty()) {
    size_t at100 = 0;
    while (at100 + 1 < sm.size() && sm[at100].first < 100) ++at100;
    const double pl = sm[at100].second, fin = sm.back().second;
    plateau = pl, final_loss = fin;
    // Halfway from the plateau to the final loss, after the plateau; null without a phase
    // change (no fall of >= 0.2 nats within `smooth` steps).
    if (!steepest.is_null() && steepest.get<double>() >= 0.2)
      t50 = first_below(Series(sm.begin() + at100, sm.end()), 0.5 * (pl + fin));
  }
  json ind = json::array(), prev = json::array();
  for (int l = 0; l < cfg.layers; ++l) {
    ind.push_back({{"layer", l}, {"head", last.induction[l].argmax().item<int64_t>()}, {"score", last.induction[l].max().item<double>()}});
    prev.push_back({{"layer", l}, {"head", last.prev_token[l].argmax().item<int64_t>()}, {"score", last.prev_token[l].max().item<double>()}});
  }
  json summary = {
      {"recipe", "induction"},
      {"config", cfg.to_json()},
      {"steps_run", loss.empty() ? 0 : loss.back().first + 1},
      {"plateau_loss", plateau},
      {"ln_vocab", std::log(static_cast<double>(cfg.vocab))},
      {"t50", t50},
      {"phase_change", !t50.is_null()},
      {"steepest_drop", steepest},
      {"steepest_drop_step", steepest_step},
      {"final_loss", final_loss},
      {"best_induction_score", ind},
      {"best_prev_token_score", prev},
      {"induction_scores_final", tensor_rows(last.induction)},
      {"prev_token_scores_final", tensor_rows(last.prev_token)},
      {"repeat_loss", {{"first_half", last.first_half_loss}, {"second_half", last.second_half_loss}}},
      {"definitions",
       "smoothed loss: mean over `smooth` steps; plateau: smoothed loss at step 100; t50: first step after it where "
       "the smoothed loss is below (plateau + final) / 2 (null without a phase change: a steepest drop < 0.2 nats); steepest_drop: the "
       "largest fall of the smoothed loss over `smooth` steps"},
      {"published",
       {{"paper", "Olsson et al. 2022: a phase change (induction heads form, loss bump) early in training"},
        {"pytorch_here", "induction_torch.py: plateau near ln 64 = 4.16, phase change at ~500-700 steps"}}},
      {"checkpoints", steps},
  };
  write_file_atomic(join_path(run_dir, "summary.json"), summary.dump(2) + "\n");

  auto an = store.analysis_series();
  auto tr = store.series();
  Report rep("Induction heads: " + std::to_string(cfg.layers) + "-layer attention-only, vocab " + std::to_string(cfg.vocab));
  rep.add_summary(summary);
  rep.add_chart("Training loss (smoothed)", "step", false, {{"loss", sm}, {"raw loss", loss}});
  std::vector<std::pair<std::string, Series>> heads;
  for (int l = 0; l < cfg.layers; ++l) {
    heads.push_back({"induction L" + std::to_string(l), an["induction.induction_best_L" + std::to_string(l)]});
    heads.push_back({"prev-token L" + std::to_string(l), an["induction.prev_token_best_L" + std::to_string(l)]});
  }
  rep.add_chart("Best head scores per layer over checkpoints", "step", false, heads);
  rep.add_chart("Loss on [X X]: first vs second copy", "step", false,
                {{"first half", tr["repeat_loss_first_half"]}, {"second half", tr["repeat_loss_second_half"]}});
  rep.write(join_path(run_dir, "report.html"));
  return summary;
}

json run_induction(const InductionConfig& cfg, const std::string& run_dir, bool resume) {
  cfg.validate("induction");
  InductionTask task(cfg);
  train(task, cfg.trainer_config(), run_dir, resume);
  return analyze_induction(run_dir);
}

}  // namespace mechlens
