#include "mechlens/train/tasks/grokking.h"

#include <cmath>
#include <filesystem>

#include "mechlens/analysis/fourier.h"
#include "mechlens/core/error.h"
#include "mechlens/core/io.h"
#include "mechlens/loading/load_model.h"
#include "mechlens/model/hook_names.h"
#include "mechlens/train/metrics_store.h"
#include "mechlens/train/python_random.h"
#include "mechlens/train/curves.h"
#include "mechlens/train/recipe_config.h"
#include "mechlens/train/report.h"
#include "mechlens/train/tasks/authors_init.h"

namespace mechlens {

using nlohmann::json;

void GrokkingConfig::validate(const std::string& where) const {
  if (p < 5 || p > 1000) fail(where, "p must lie in 5..1000");
  if (!(frac_train > 0 && frac_train < 1)) fail(where, "frac_train must lie in (0, 1)");
  if (static_cast<int64_t>(frac_train * p * p) < 1) fail(where, "frac_train leaves no training pairs");
  if (epochs < 1) fail(where, "epochs must be >= 1");
  if (eval_every < 1) fail(where, "eval_every must be >= 1");
  if (d_model < 1 || n_heads < 1 || d_model % n_heads != 0) fail(where, "d_model must be a multiple of n_heads");
  if (d_mlp < 1) fail(where, "d_mlp must be >= 1");
  trainer_config().validate(where);
}

json GrokkingConfig::to_json() const {
  return with_common_json(*this, {{"recipe", "grokking"}, {"p", p}, {"frac_train", frac_train}, {"epochs", epochs}, {"betas", {beta1, beta2}}, {"warmup", warmup},
          {"eval_every", eval_every}, {"stop_test_loss", stop_test_loss}, {"d_model", d_model},
          {"n_heads", n_heads}, {"d_mlp", d_mlp}, {"float64_loss", float64_loss}});
}

GrokkingConfig GrokkingConfig::from_json(const json& j, const std::string& where) {
  GrokkingConfig c;
  if (json_get_or<std::string>(j, "recipe", "", where) != "grokking") fail(where, "not a grokking run's config");
  c.p = json_get<int64_t>(j, "p", where);
  c.frac_train = json_get<double>(j, "frac_train", where);
  c.epochs = json_get<int64_t>(j, "epochs", where);
  auto betas = json_get<std::vector<double>>(j, "betas", where);
  if (betas.size() != 2) fail(where, "betas must hold 2 numbers");
  c.beta1 = betas[0], c.beta2 = betas[1];
  c.warmup = json_get<int64_t>(j, "warmup", where);
  c.eval_every = json_get<int64_t>(j, "eval_every", where);
  c.stop_test_loss = json_get<double>(j, "stop_test_loss", where);
  c.d_model = json_get<int>(j, "d_model", where);
  c.n_heads = json_get<int>(j, "n_heads", where);
  c.d_mlp = json_get<int>(j, "d_mlp", where);
  c.float64_loss = json_get<bool>(j, "float64_loss", where);
  read_common_json(c, j, where);
  c.validate(where);
  return c;
}

ModelConfig GrokkingConfig::model_config() const {
  ModelConfig m;
  m.n_layers = 1, m.d_model = d_model, m.n_heads = n_heads, m.d_head = d_model / n_heads, m.d_mlp = d_mlp;
  m.d_vocab = static_cast<int>(p + 1), m.d_vocab_out = static_cast<int>(p + 1), m.n_ctx = 3;
  m.act_fn = ActFn::Relu, m.normalization_type = NormType::None, m.positional_embedding_type = PosEmbed::Standard;
  m.original_architecture = "mechlens", m.model_name = "grokking-p" + std::to_string(p);
  return m;
}

TrainerConfig GrokkingConfig::trainer_config() const {
  TrainerConfig t = common_trainer_config(*this, "grokking");
  t.optim.beta1 = beta1, t.optim.beta2 = beta2;
  t.schedule = "constant", t.warmup_steps = warmup, t.steps = epochs, t.eval_every = eval_every, t.log_every = 100;
  return t;
}

StateDict grokking_init(const GrokkingConfig& c) { return authors_init(c.model_config(), c.seed); }

ModularData modular_addition_data(int64_t p, double frac_train, uint64_t seed) {
  std::vector<int64_t> idx(p * p);
  for (int64_t i = 0; i < p * p; ++i) idx[i] = i;  // pair (i / p, i % p), the authors' order
  PythonRandom rng(seed);
  rng.shuffle(idx);
  const int64_t div = static_cast<int64_t>(frac_train * static_cast<double>(p * p));
  auto rows = [&](int64_t lo, int64_t hi) {
    at::Tensor x = at::empty({hi - lo, 3}, at::kLong);
    auto a = x.accessor<int64_t, 2>();
    for (int64_t r = lo; r < hi; ++r) a[r - lo][0] = idx[r] / p, a[r - lo][1] = idx[r] % p, a[r - lo][2] = p;
    return x;
  };
  ModularData d;
  d.train_x = rows(0, div), d.test_x = rows(div, p * p);
  auto labels = [&](const at::Tensor& x) { return (x.select(1, 0) + x.select(1, 1)).remainder(p); };
  d.train_y = labels(d.train_x), d.test_y = labels(d.test_x);
  at::Tensor a = at::arange(p, at::kLong).repeat_interleave(p), b = at::arange(p, at::kLong).repeat({p});
  d.all_x = at::stack({a, b, at::full({p * p}, p, at::kLong)}, 1);
  d.all_y = labels(d.all_x);
  d.is_train = at::zeros({p * p}, at::kBool);
  for (int64_t r = 0; r < div; ++r) d.is_train[idx[r]] = true;
  return d;
}

at::Tensor cross_entropy(const at::Tensor& logits, const at::Tensor& labels, bool float64) {
  at::Tensor lp = at::log_softmax(float64 ? logits.to(at::kDouble) : logits, -1);
  return -lp.gather(-1, labels.unsqueeze(-1)).mean();
}

GrokkingTask::GrokkingTask(const GrokkingConfig& cfg)
    : cfg_(cfg), data_(modular_addition_data(cfg.p, cfg.frac_train, cfg.seed)) {
  model_ = std::make_unique<HookedTransformer>(cfg.model_config(), grokking_init(cfg), "none");
  // The authors' model has no attention or unembedding biases: they stay zero.
  model_->set_requires_grad(true, authors_frozen_biases(model_->cfg()));
}

namespace {
at::Tensor last_logits(HookedTransformer& m, const at::Tensor& x) {
  ForwardOptions o;
  o.last_position_only = true, o.fold_embeddings = true;
  return m.forward(x, o).select(1, 0);
}
}  // namespace

at::Tensor GrokkingTask::loss(int64_t, Metrics& m) {
  at::Tensor logits = last_logits(*model_, data_.train_x);
  {
    at::NoGradGuard ng;
    m["train_acc"] = logits.argmax(-1).eq(data_.train_y).to(at::kDouble).mean().item<double>();
  }
  return cross_entropy(logits, data_.train_y, cfg_.float64_loss);
}

void GrokkingTask::evaluate(int64_t, Metrics& m) {
  if (data_.test_x.size(0) == 0) return;
  at::Tensor logits = last_logits(*model_, data_.test_x);
  m["test_loss"] = cross_entropy(logits, data_.test_y, cfg_.float64_loss).item<double>();
  m["test_acc"] = logits.argmax(-1).eq(data_.test_y).to(at::kDouble).mean().item<double>();
}

bool GrokkingTask::should_stop(const Metrics& eval) {
  auto it = eval.find("test_loss");
  return cfg_.stop_test_loss > 0 && it != eval.end() && it->second < cfg_.stop_test_loss;
}

void GrokkingTask::save_checkpoint(const std::string& dir) { mechlens::save_checkpoint(*model_, dir); }

// ---- analysis over checkpoints ---------------------------------------------------------

namespace {

struct CheckpointResult {
  int64_t step;
  Metrics m;
  KeyFrequencies kf;
};

// Logits [p*p, p+1] and MLP activations [p*p, d_mlp] at the last position, every input.
std::pair<at::Tensor, at::Tensor> run_all(HookedTransformer& model, const ModularData& d) {
  ForwardOptions o;
  o.last_position_only = true, o.fold_embeddings = true;
  const std::string post = act_name("post", 0);
  auto [logits, cache] = model.run_with_cache(d.all_x, names_in({post}), o);
  return {logits.select(1, 0), cache.at(post).select(1, 0)};
}

double ce(const at::Tensor& logits, const at::Tensor& y) { return cross_entropy(logits, y, true).item<double>(); }
double acc(const at::Tensor& logits, const at::Tensor& y) {
  return logits.argmax(-1).eq(y).to(at::kDouble).mean().item<double>();
}

}  // namespace

json analyze_grokking(const std::string& run_dir) {
  const std::string cfg_path = join_path(run_dir, "config.json");
  GrokkingConfig cfg = GrokkingConfig::from_json(read_json_file(cfg_path), cfg_path);
  const int64_t p = cfg.p;
  ModularData d = modular_addition_data(p, cfg.frac_train, cfg.seed);
  std::vector<int64_t> steps = list_checkpoints(run_dir);
  if (steps.empty()) fail(run_dir, "no checkpoints to analyse (checkpoints/step_N)");
  at::NoGradGuard ng;

  // Key frequencies of the final checkpoint define the restricted and excluded losses.
  auto final_model = load_model(checkpoint_dir(run_dir, steps.back()));
  auto [final_logits, final_post] = run_all(*final_model, d);
  KeyFrequencies final_kf = key_frequencies(final_post, p);
  std::vector<int64_t> key = final_kf.key(10);

  MetricsStore store(join_path(run_dir, "metrics.sqlite"));
  store.clear_analysis("grokking.");
  at::Tensor tr = d.is_train.nonzero().squeeze(1), te = d.is_train.logical_not().nonzero().squeeze(1);
  at::Tensor y_tr = d.all_y.index_select(0, tr), y_te = d.all_y.index_select(0, te);
  for (int64_t s : steps) {
    const std::string dir = checkpoint_dir(run_dir, s);
    // The final checkpoint was run above already.
    std::unique_ptr<HookedTransformer> loaded = s == steps.back() ? nullptr : load_model(dir);
    HookedTransformer* model = loaded ? loaded.get() : final_model.get();
    if (model->cfg().d_vocab != p + 1 || model->cfg().n_layers != 1) fail(dir, "checkpoint does not match config.json");
    auto [logits, post] = loaded ? run_all(*model, d) : std::make_pair(final_logits, final_post);
    Metrics m;
    m["train_loss"] = ce(logits.index_select(0, tr), y_tr);
    m["train_acc"] = acc(logits.index_select(0, tr), y_tr);
    if (te.numel()) m["test_loss"] = ce(logits.index_select(0, te), y_te), m["test_acc"] = acc(logits.index_select(0, te), y_te);
    // The outputs 0..p-1 (not '='), split along the key frequencies' (a + b) directions.
    at::Tensor L = logits.slice(1, 0, p).to(at::kDouble);
    LogitSplit split = split_logits(L, p, key);
    at::Tensor restricted = split.key + L.mean(0, true);  // key frequencies plus each output's mean
    m["restricted_loss"] = ce(restricted, d.all_y);
    m["excluded_loss"] = ce(split.rest.index_select(0, tr), y_tr);
    double sq = 0;
    for (auto& [n, t] : model->parameters()) sq += t.to(at::kDouble).pow(2).sum().item<double>();
    m["sum_sq_weights"] = sq;
    KeyFrequencies kf = key_frequencies(post, p);
    m["n_key_freqs"] = static_cast<double>(kf.key(10).size());
    double fsum = 0;
    int64_t fn = 0;
    for (double f : kf.neuron_frac)
      if (std::isfinite(f)) fsum += f, ++fn;
    m["mean_frac_explained"] = fn ? fsum / fn : NAN;
    for (auto& [n, v] : m) store.set_analysis(s, "grokking." + n, v);
  }

  // Summary: training metrics for the curves, the analysis for the final numbers.
  auto train = store.series();
  auto an = store.analysis_series();
  auto final_of = [&](const std::string& n) {
    auto it = an.find("grokking." + n);
    return it == an.end() || it->second.empty() ? json(nullptr) : json(it->second.back().second);
  };
  json kfj = json::array();
  for (int64_t f : final_kf.key(1)) kfj.push_back({{"freq", f}, {"neurons", final_kf.counts.at(f)}});
  auto steps_run_s = store.meta("steps_run");
  const int64_t epochs_run = steps_run_s ? std::stoll(*steps_run_s) : steps.back();
  const auto& test_curve = train["test_loss"];
  json summary = {
      {"recipe", "grokking"},
      {"config", cfg.to_json()},
      {"epochs_run", epochs_run},
      {"grokking_epoch", first_below(test_curve, 0.1)},
      {"final",
       {{"train_loss", final_of("train_loss")},
        {"test_loss", final_of("test_loss")},
        {"train_acc", final_of("train_acc")},
        {"test_acc", final_of("test_acc")}}},
      {"key_frequencies", kfj},
      {"n_key_frequencies_ge_10_neurons", key.size()},
      {"dead_neurons", final_kf.dead},
      {"sum_sq_weights_final", final_of("sum_sq_weights")},
      {"phase_boundaries",
       {{"memorization_end", first_at_least(train["train_acc"], 0.99)},
        {"restricted_loss_below_0.1", first_below(an["grokking.restricted_loss"], 0.1)},
        {"test_loss_below_1", first_below(test_curve, 1.0)},
        {"test_loss_below_0.1", first_below(test_curve, 0.1)},
        {"test_loss_below_1e-3", first_below(test_curve, 1e-3)},
        {"definitions",
         "memorization_end: first epoch with train accuracy >= 0.99; restricted_loss_below_0.1: first checkpoint "
         "whose restricted loss (key frequencies only) is < 0.1; test_loss_below_X: first evaluated epoch"}}},
      {"published",
       {{"paper", "Nanda et al. 2023, p = 113, frac_train 0.3: phases end at epochs 1,400 / 9,400 / 14,000"},
        {"authors_grokking_epoch_frac_0.5", 956},
        {"pytorch_here_frac_0.5_grokking_epoch", {{"seed0", 850}, {"seed3", 720}, {"seed7", 680}}}}},
      {"checkpoints", steps},
  };
  write_file_atomic(join_path(run_dir, "summary.json"), summary.dump(2) + "\n");

  Report rep("Grokking: modular addition, p = " + std::to_string(p) + ", frac_train " + std::to_string(cfg.frac_train));
  rep.add_summary(summary);
  rep.add_chart("Loss (log scale)", "epoch", true,
                {{"train loss", train["train_loss"]}, {"test loss", test_curve},
                 {"restricted loss", an["grokking.restricted_loss"]}, {"excluded loss", an["grokking.excluded_loss"]}});
  rep.add_chart("Accuracy", "epoch", false, {{"train", train["train_acc"]}, {"test", train["test_acc"]}});
  rep.add_chart("Sum of squared weights", "epoch", false, {{"sum sq weights", an["grokking.sum_sq_weights"]}});
  rep.add_chart("Key frequencies (>= 10 neurons) and mean variance explained", "epoch", false,
                {{"key frequencies", an["grokking.n_key_freqs"]}, {"mean frac explained", an["grokking.mean_frac_explained"]}});
  rep.write(join_path(run_dir, "report.html"));
  return summary;
}

json run_grokking(const GrokkingConfig& cfg, const std::string& run_dir, bool resume) {
  cfg.validate("grokking");
  GrokkingTask task(cfg);
  train(task, cfg.trainer_config(), run_dir, resume);
  return analyze_grokking(run_dir);
}

}  // namespace mechlens
