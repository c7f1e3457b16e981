#include "mechlens/train/tasks/addition.h"

#include <cmath>

#include "mechlens/core/error.h"
#include "mechlens/core/io.h"
#include "mechlens/loading/load_model.h"
#include "mechlens/train/curves.h"
#include "mechlens/train/metrics_store.h"
#include "mechlens/train/recipe_config.h"
#include "mechlens/train/report.h"
#include "mechlens/train/tasks/authors_init.h"

namespace mechlens {

using nlohmann::json;

namespace {
constexpr int64_t kPlus = 10, kEq = 11;
}

void AdditionConfig::validate(const std::string& where) const {
  if (digits < 1 || digits > 9) fail(where, "digits must lie in 1..9");
  if (d_model < 1 || n_heads < 1 || d_model % n_heads) fail(where, "d_model must be a multiple of n_heads");
  if (d_mlp < 1) fail(where, "d_mlp must be >= 1");
  if (batch < 1) fail(where, "batch must be >= 1");
  if (smooth < 1) fail(where, "smooth must be >= 1");
  trainer_config().validate(where);
}

json AdditionConfig::to_json() const {
  return with_common_json(*this, {{"recipe", "addition"}, {"digits", digits}, {"d_model", d_model}, {"n_heads", n_heads}, {"d_mlp", d_mlp},
          {"batch", batch}, {"steps", steps}, {"betas", {beta1, beta2}},
          {"warmup", warmup}, {"eval_every", eval_every}, {"smooth", smooth}});
}

AdditionConfig AdditionConfig::from_json(const json& j, const std::string& where) {
  AdditionConfig c;
  if (json_get_or<std::string>(j, "recipe", "", where) != "addition") fail(where, "not an addition run's config");
  c.digits = json_get<int>(j, "digits", where);
  c.d_model = json_get<int>(j, "d_model", where);
  c.n_heads = json_get<int>(j, "n_heads", where);
  c.d_mlp = json_get<int>(j, "d_mlp", where);
  c.batch = json_get<int64_t>(j, "batch", where);
  c.steps = json_get<int64_t>(j, "steps", where);
  auto b = json_get<std::vector<double>>(j, "betas", where);
  if (b.size() != 2) fail(where, "betas must hold 2 numbers");
  c.beta1 = b[0], c.beta2 = b[1];
  c.warmup = json_get<int64_t>(j, "warmup", where);
  c.eval_every = json_get<int64_t>(j, "eval_every", where);
  c.smooth = json_get<int>(j, "smooth", where);
  read_common_json(c, j, where);
  c.validate(where);
  return c;
}

ModelConfig AdditionConfig::model_config() const {
  ModelConfig m;
  m.n_layers = 1, m.d_model = d_model, m.n_heads = n_heads, m.d_head = d_model / n_heads, m.d_mlp = d_mlp;
  m.d_vocab = 12, m.d_vocab_out = 10, m.n_ctx = static_cast<int>(n_ctx());
  m.act_fn = ActFn::Relu, m.normalization_type = NormType::None, m.positional_embedding_type = PosEmbed::Standard;
  m.original_architecture = "mechlens", m.model_name = "addition-" + std::to_string(digits) + "d";
  return m;
}

TrainerConfig AdditionConfig::trainer_config() const {
  TrainerConfig t = common_trainer_config(*this, "addition");
  t.optim.beta1 = beta1, t.optim.beta2 = beta2;
  t.warmup_steps = warmup, t.steps = steps, t.eval_every = eval_every, t.log_every = 250;
  return t;
}

std::string answer_digit_name(const AdditionConfig& cfg, int i) { return "c" + std::to_string(cfg.digits - i); }

at::Tensor addition_batch(const AdditionConfig& c, uint64_t seed, int64_t step, int64_t batch) {
  auto g = step_generator(seed, step, 29);
  const int64_t n = c.digits;
  const int64_t top = static_cast<int64_t>(std::llround(std::pow(10.0, static_cast<double>(n))));
  at::Tensor a = at::randint(top, {batch}, g, at::kLong), b = at::randint(top, {batch}, g, at::kLong);
  auto digits = [](const at::Tensor& x, int64_t k) {  // most significant first
    std::vector<at::Tensor> d;
    for (int64_t i = 0; i < k; ++i)
      d.push_back(at::floor_divide(x, static_cast<int64_t>(std::llround(std::pow(10.0, static_cast<double>(k - 1 - i))))).remainder(10));
    return at::stack(d, 1);
  };
  return at::cat({digits(a, n), at::full({batch, 1}, kPlus, at::kLong), digits(b, n), at::full({batch, 1}, kEq, at::kLong),
                  digits(a + b, n + 1)},
                 1);
}

at::Tensor per_digit_loss(HookedTransformer& m, const AdditionConfig& c, const at::Tensor& tokens) {
  const int64_t n = c.digits, first = 2 * n + 1;  // position of '=' predicts the first answer digit
  ForwardOptions o;
  o.fold_embeddings = true;
  at::Tensor logits = m.forward(tokens, o).slice(1, first, first + n + 1);  // [b, n + 1, 10]
  at::Tensor target = tokens.slice(1, first + 1, first + n + 2);
  at::Tensor lp = at::log_softmax(logits.to(at::kDouble), -1);
  return -lp.gather(-1, target.unsqueeze(-1)).squeeze(-1).mean(0);
}

AdditionTask::AdditionTask(const AdditionConfig& cfg) : cfg_(cfg) {
  model_ = std::make_unique<HookedTransformer>(cfg.model_config(), authors_init(cfg.model_config(), cfg.seed), "none");
  model_->set_requires_grad(true, authors_frozen_biases(model_->cfg()));
  test_ = addition_batch(cfg, cfg.seed + 12345, 0, 2048);
}

at::Tensor AdditionTask::loss(int64_t step, Metrics& m) {
  at::Tensor d = per_digit_loss(*model_, cfg_, addition_batch(cfg_, cfg_.seed, step, cfg_.batch));
  at::Tensor dd = d.detach();
  for (int i = 0; i < dd.size(0); ++i) m["loss_" + answer_digit_name(cfg_, i)] = dd[i].item<double>();
  return d.mean();
}

void AdditionTask::evaluate(int64_t, Metrics& m) {
  at::Tensor d = per_digit_loss(*model_, cfg_, test_);
  for (int i = 0; i < d.size(0); ++i) m["test_loss_" + answer_digit_name(cfg_, i)] = d[i].item<double>();
  m["test_loss"] = d.mean().item<double>();
}

void AdditionTask::save_checkpoint(const std::string& dir) { mechlens::save_checkpoint(*model_, dir); }

json analyze_addition(const std::string& run_dir) {
  const std::string cfg_path = join_path(run_dir, "config.json");
  AdditionConfig cfg = AdditionConfig::from_json(read_json_file(cfg_path), cfg_path);
  std::vector<int64_t> steps = list_checkpoints(run_dir);
  if (steps.empty()) fail(run_dir, "no checkpoints to analyse (checkpoints/step_N)");
  MetricsStore store(join_path(run_dir, "metrics.sqlite"));
  store.clear_analysis("addition.");
  at::Tensor test = addition_batch(cfg, cfg.seed + 12345, 0, 2048);
  at::Tensor last;
  for (int64_t s : steps) {
    auto model = load_model(checkpoint_dir(run_dir, s));
    if (model->cfg().n_ctx != cfg.n_ctx()) fail(checkpoint_dir(run_dir, s), "checkpoint does not match config.json");
    at::NoGradGuard ng;
    last = per_digit_loss(*model, cfg, test);
    for (int i = 0; i < last.size(0); ++i) store.set_analysis(s, "addition.test_loss_" + answer_digit_name(cfg, i), last[i].item<double>());
  }
  auto tr = store.series();
  json phase = json::array(), below1 = json::array(), below01 = json::array(), finals = json::array(), names = json::array();
  std::vector<std::pair<std::string, Series>> curves;
  for (int i = 0; i <= cfg.digits; ++i) {
    const std::string n = answer_digit_name(cfg, i);
    Series sm = moving_average(tr["loss_" + n], cfg.smooth);
    phase.push_back(steepest_drop(sm, cfg.smooth).second);
    below1.push_back(first_below(sm, 1.0));
    below01.push_back(first_below(sm, 0.1));
    finals.push_back(last[i].item<double>());
    names.push_back(n);
    curves.push_back({n, sm});
  }
  // Are the drops spread out, and in which order?
  std::vector<int64_t> ph;
  for (auto& p : phase)
    if (!p.is_null()) ph.push_back(p.get<int64_t>());
  bool left_to_right = ph.size() == phase.size();
  for (size_t i = 1; i < ph.size(); ++i) left_to_right &= ph[i] > ph[i - 1];
  json spread = ph.empty() ? json(nullptr) : json(*std::max_element(ph.begin(), ph.end()) - *std::min_element(ph.begin(), ph.end()));
  json summary = {
      {"recipe", "addition"},
      {"config", cfg.to_json()},
      {"answer_digits", names},
      {"digit_phase_change_steps", phase},
      {"digit_first_below_1", below1},
      {"digit_first_below_0.1", below01},
      {"final_digit_losses", finals},
      {"phase_change_spread_steps", spread},
      {"phase_changes_left_to_right", left_to_right},
      {"definitions",
       "per answer digit (c" + std::to_string(cfg.digits) + " = the leading carry first): the training loss smoothed "
       "over `smooth` steps; phase change = the middle of its steepest fall over `smooth` steps; final losses on 2,048 "
       "fixed test sums"},
      {"published",
       "Nanda et al. (5 digits, infinite data): each digit has its own phase change, not in left-to-right order; the "
       "baseline addition_torch.py reports the authors' run (first below 1 / 0.1): carry 9 / 288, ..., units 1635 / 1761"},
      {"checkpoints", steps},
  };
  write_file_atomic(join_path(run_dir, "summary.json"), summary.dump(2) + "\n");
  Report rep(std::to_string(cfg.digits) + "-digit addition: one phase change per answer digit");
  rep.add_summary(summary);
  rep.add_chart("Training loss per answer digit (smoothed, log scale)", "step", true, curves);
  rep.write(join_path(run_dir, "report.html"));
  return summary;
}

json run_addition(const AdditionConfig& cfg, const std::string& run_dir, bool resume) {
  cfg.validate("addition");
  AdditionTask task(cfg);
  train(task, cfg.trainer_config(), run_dir, resume);
  return analyze_addition(run_dir);
}

}  // namespace mechlens
