#include "mechlens/train/tasks/lm.h"

#include <cmath>
#include <filesystem>
#include <map>
#include <set>

#include "mechlens/analysis/head_detect.h"
#include "mechlens/core/error.h"
#include "mechlens/core/io.h"
#include "mechlens/loading/load_model.h"
#include "mechlens/model/hook_names.h"
#include "mechlens/tokenize/sentencepiece.h"
#include "mechlens/train/corpus.h"
#include "mechlens/train/metrics_store.h"
#include "mechlens/train/recipe_config.h"
#include "mechlens/train/report.h"

namespace mechlens {

using nlohmann::json;
namespace fs = std::filesystem;

void LmConfig::validate(const std::string& where) const {
  if (layers < 1 || layers > 4) fail(where, "layers must lie in 1..4");
  if (corpus != "moby-dick" && corpus != "sotu" && !file_exists(corpus))
    fail(where, "corpus " + corpus + " is neither moby-dick, sotu nor a file");
  if (vocab < 64 || vocab > 65536) fail(where, "vocab must lie in 64..65536");
  if (act != "gelu" && act != "solu") fail(where, "act must be gelu or solu");
  if (d_model < 1 || n_heads < 1 || d_model % n_heads) fail(where, "d_model must be a multiple of n_heads");
  if (n_ctx < 8 || batch < 1) fail(where, "need n_ctx >= 8 and batch >= 1");
  if (!(repeat_frac >= 0 && repeat_frac <= 1)) fail(where, "repeat_frac must lie in [0, 1]");
  if (!(random_repeat_frac >= 0 && random_repeat_frac <= 1)) fail(where, "random_repeat_frac must lie in [0, 1]");
  if (!(init_std > 0 && init_std < 10)) fail(where, "init_std must lie in (0, 10)");
  trainer_config().validate(where);
}

json LmConfig::to_json() const {
  return with_common_json(*this, {{"recipe", "lm"}, {"corpus", corpus}, {"vocab", vocab}, {"layers", layers}, {"attn_only", attn_only},
          {"act", act}, {"d_model", d_model}, {"n_heads", n_heads}, {"d_mlp", d_mlp}, {"n_ctx", n_ctx},
          {"batch", batch}, {"steps", steps}, {"grad_clip", grad_clip},
          {"warmup", warmup}, {"repeat_frac", repeat_frac}, {"random_repeat_frac", random_repeat_frac}, {"init_std", init_std}, {"layernorm", layernorm}, {"eval_every", eval_every}});
}

LmConfig LmConfig::from_json(const json& j, const std::string& where) {
  LmConfig c;
  if (json_get_or<std::string>(j, "recipe", "", where) != "lm") fail(where, "not an lm run's config");
  c.corpus = json_get<std::string>(j, "corpus", where);
  c.vocab = json_get<int>(j, "vocab", where);
  c.layers = json_get<int>(j, "layers", where);
  c.attn_only = json_get<bool>(j, "attn_only", where);
  c.act = json_get<std::string>(j, "act", where);
  c.d_model = json_get<int>(j, "d_model", where);
  c.n_heads = json_get<int>(j, "n_heads", where);
  c.d_mlp = json_get<int>(j, "d_mlp", where);
  c.n_ctx = json_get<int64_t>(j, "n_ctx", where);
  c.batch = json_get<int64_t>(j, "batch", where);
  c.steps = json_get<int64_t>(j, "steps", where);
  c.grad_clip = json_get<double>(j, "grad_clip", where);
  c.warmup = json_get<int64_t>(j, "warmup", where);
  c.repeat_frac = json_get<double>(j, "repeat_frac", where);
  c.random_repeat_frac = json_get_or<double>(j, "random_repeat_frac", 0.0, where);
  c.init_std = json_get_or<double>(j, "init_std", 0.02, where);
  c.layernorm = json_get_or<bool>(j, "layernorm", true, where);
  c.eval_every = json_get<int64_t>(j, "eval_every", where);
  read_common_json(c, j, where);
  c.validate(where);
  return c;
}

ModelConfig LmConfig::model_config() const {
  ModelConfig m;
  m.n_layers = layers, m.d_model = d_model, m.n_heads = n_heads, m.d_head = d_model / n_heads, m.d_mlp = d_mlp;
  m.d_vocab = vocab, m.n_ctx = static_cast<int>(n_ctx), m.attn_only = attn_only;
  m.act_fn = act == "solu" ? ActFn::SoluLn : ActFn::Gelu;
  m.normalization_type = layernorm ? NormType::LN : NormType::None;
  m.positional_embedding_type = PosEmbed::Standard, m.bos_token_id = 1, m.eos_token_id = 2;
  m.original_architecture = "mechlens";
  m.model_name = "lm-" + corpus + "-" + std::to_string(layers) + "l-" + (attn_only ? "attn-only" : act);
  return m;
}

TrainerConfig LmConfig::trainer_config() const {
  TrainerConfig t = common_trainer_config(*this, "lm");
  t.optim.beta2 = 0.99;
  t.schedule = "cosine", t.warmup_steps = warmup, t.min_lr_frac = 0.1, t.grad_clip = grad_clip;
  t.steps = steps, t.eval_every = eval_every, t.log_every = 100;
  return t;
}

namespace {

// GPT-2's init: weight matrices N(0, std^2) (GPT-2's std is 0.02), output projections scaled by
// 1 / sqrt(2 layers); zero biases, unit LayerNorm weights.
StateDict lm_init(const ModelConfig& c, uint64_t seed, double std) {
  at::manual_seed(seed);
  StateDict s;
  const double out_scale = 1.0 / std::sqrt(2.0 * c.n_layers);
  auto expected = expected_parameters(c);
  std::map<std::string, std::vector<int64_t>> sorted(expected.begin(), expected.end());  // draw in name order
  std::set<std::string> outputs;  // the projections that write into the residual stream
  for (int l = 0; l < c.n_layers; ++l) outputs.insert({param_name("W_O", l), param_name("W_out", l)});
  for (const auto& [n, shape] : sorted) {
    if (n.find(".W_") == std::string::npos) continue;  // biases and norm weights: defaults below
    const bool out = outputs.count(n) > 0;
    s[n] = at::randn(shape) * (out ? std * out_scale : std);
  }
  fill_missing_defaults(s, c);
  return s;
}

at::Tensor encode_docs(const Tokenizer& tok, const Corpus& c, bool heldout) {
  std::vector<int64_t> ids;
  for (size_t i = 0; i < c.docs.size(); ++i) {
    if (c.heldout[i] != heldout) continue;
    ids.push_back(1);  // <s>
    auto e = tok.encode(c.docs[i]);
    ids.insert(ids.end(), e.begin(), e.end());
  }
  return at::tensor(ids, at::kLong);
}

}  // namespace

LmData prepare_lm_data(const LmConfig& cfg, const std::string& run_dir) {
  Corpus c = load_corpus(cfg.corpus);
  const std::string model = join_path(run_dir, "tokenizer.model");
  if (!file_exists(model)) {
    // SentencePiece reads one sentence per line: the training documents' paragraphs.
    std::string text;
    for (size_t i = 0; i < c.docs.size(); ++i) {
      if (c.heldout[i]) continue;
      std::string line;
      for (char ch : c.docs[i]) {
        if (ch == '\n') {
          if (!line.empty()) text += line + "\n", line.clear();
        } else {
          line += ch;
        }
      }
      if (!line.empty()) text += line + "\n";
    }
    const std::string txt = join_path(run_dir, "tokenizer_train.txt");
    write_file_atomic(txt, text);
    const std::string prefix = join_path(run_dir, "tokenizer.tmp");
    train_sentencepiece(txt, prefix, cfg.vocab, "bpe");
    fs::remove(txt);
    fs::remove(prefix + ".vocab");
    fs::rename(prefix + ".model", model);  // atomic: a killed run retrains
  }
  auto tok = SentencePieceTokenizer::load(model, "");
  if (tok->vocab_size() != cfg.vocab) fail(model, "vocabulary size differs from the config's");
  LmData d;
  d.train = encode_docs(*tok, c, false);
  d.heldout = encode_docs(*tok, c, true);
  const int64_t w = std::min<int64_t>(256, d.heldout.size(0) / cfg.n_ctx);
  if (w < 1) fail(cfg.corpus, "the held-out documents are shorter than one context");
  d.heldout_windows = d.heldout.slice(0, 0, w * cfg.n_ctx).view({w, cfg.n_ctx});
  if (d.train.size(0) < 2 * cfg.n_ctx) fail(cfg.corpus, "the training documents are too short for n_ctx");
  return d;
}

std::pair<double, double> ngram_baselines(const at::Tensor& train, const at::Tensor& windows, int64_t V) {
  at::Tensor uni = at::bincount(train, {}, V).to(at::kDouble) + 1.0;  // add-one unigram
  uni = uni / uni.sum();
  at::Tensor pairs = train.slice(0, 0, -1) * V + train.slice(0, 1);
  at::Tensor big = at::bincount(pairs, {}, V * V).to(at::kDouble).view({V, V});
  const double mu = 100.0;
  at::Tensor prev = windows.slice(1, 0, -1).reshape(-1), next = windows.slice(1, 1).reshape(-1);
  at::Tensor p_uni = uni.index_select(0, next);
  at::Tensor c_ab = big.index({prev, next}), c_a = big.sum(1).index_select(0, prev);
  at::Tensor p_bi = (c_ab + mu * p_uni) / (c_a + mu);
  return {-p_uni.log().mean().item<double>(), -p_bi.log().mean().item<double>()};
}

LmTask::LmTask(const LmConfig& cfg, const std::string& run_dir) : cfg_(cfg), run_dir_(run_dir) {
  data_ = prepare_lm_data(cfg, run_dir);
  model_ = std::make_unique<HookedTransformer>(cfg.model_config(), lm_init(cfg.model_config(), cfg.seed, cfg.init_std), "none");
  model_->set_requires_grad(true);
}

LmBatch lm_batch(const LmConfig& cfg, const at::Tensor& train, int64_t step) {
  auto g = step_generator(cfg.seed, step, 3);
  at::Tensor start = at::randint(train.size(0) - cfg.n_ctx, {cfg.batch, 1}, g, at::kLong);
  const int64_t n = cfg.n_ctx;
  at::Tensor pos = at::arange(n, at::kLong).unsqueeze(0);
  // Repeating windows: [prefix | X | X | suffix], all corpus text, with the length L of X
  // and its offset P random per window, so that no fixed-offset (positional) head can
  // do the copying: only induction can.
  at::Tensor rep = at::rand({cfg.batch, 1}, g) < cfg.repeat_frac;
  at::Tensor L = at::randint(std::min<int64_t>(8, n / 2), n / 2 + 1, {cfg.batch, 1}, g, at::kLong);
  at::Tensor P = (at::rand({cfg.batch, 1}, g) * (n - 2 * L + 1)).floor().to(at::kLong);
  at::Tensor second = rep & (pos >= P + L) & (pos < P + 2 * L);
  at::Tensor offs = at::where(second, pos - L, pos);
  LmBatch b;
  b.tokens = train.index_select(0, (start + offs).reshape(-1)).view({cfg.batch, n});
  if (cfg.random_repeat_frac > 0) {
    // Windows of <s> + X + X (+ one more token), X random pieces (ids 3..V-1) of length
    // h = (n - 1) / 2: the head detectors' own probe, as a curriculum for induction.
    // As in the induction recipe, only the predictable tokens count in their loss (the
    // second copy after its first token); text windows count everywhere.
    const int64_t h = (n - 1) / 2;
    at::Tensor rr = (at::rand({cfg.batch, 1}, g) < cfg.random_repeat_frac) & ~rep;
    at::Tensor X = at::randint(3, cfg.vocab, {cfg.batch, n}, g, at::kLong);
    at::Tensor src = at::where((pos > h) & (pos <= 2 * h), pos - h, pos).expand({cfg.batch, n});
    at::Tensor synth = X.gather(1, src);
    synth.select(1, 0).fill_(1);
    b.tokens = at::where(rr, synth, b.tokens);
    at::Tensor target = pos.slice(1, 1);  // position of each predicted token
    b.weights = ((~rr) | ((target > h + 1) & (target <= 2 * h))).to(at::kFloat);
    b.random_windows = rr.squeeze(1);
  }
  return b;
}

at::Tensor LmTask::loss(int64_t step, Metrics& m) {
  LmBatch b = lm_batch(cfg_, data_.train, step);
  if (!b.weights.defined()) return HookedTransformer::loss(model_->forward(b.tokens), b.tokens);
  at::Tensor nll = HookedTransformer::per_token_loss(model_->forward(b.tokens), b.tokens);
  return (nll * b.weights).sum() / b.weights.sum();
}

void LmTask::evaluate(int64_t, Metrics& m) {
  at::Tensor w = data_.heldout_windows;
  double total = 0;
  for (int64_t i = 0; i < w.size(0); i += 64) {
    at::Tensor b = w.slice(0, i, std::min(i + 64, w.size(0)));
    total += HookedTransformer::per_token_loss(model_->forward(b), b).sum().item<double>();
  }
  m["heldout_loss"] = total / (w.size(0) * (w.size(1) - 1));
}

void LmTask::save_checkpoint(const std::string& dir) {
  mechlens::save_checkpoint(*model_, dir);
  // The tokenizer goes with every checkpoint, so `run --prompt` & co work on it.
  write_file_atomic(join_path(dir, "tokenizer.model"), read_file(join_path(run_dir_, "tokenizer.model")));
}

json analyze_lm(const std::string& run_dir) {
  const std::string cfg_path = join_path(run_dir, "config.json");
  LmConfig cfg = LmConfig::from_json(read_json_file(cfg_path), cfg_path);
  std::vector<int64_t> steps = list_checkpoints(run_dir);
  if (steps.empty()) fail(run_dir, "no checkpoints to analyse (checkpoints/step_N)");
  LmData d = prepare_lm_data(cfg, run_dir);
  auto [uni, bi] = ngram_baselines(d.train, d.heldout_windows, cfg.vocab);
  MetricsStore store(join_path(run_dir, "metrics.sqlite"));
  store.clear_analysis("lm.");
  const int64_t half = (cfg.n_ctx - 1) / 2;
  at::Tensor ind, prev;
  double heldout = NAN;
  for (int64_t s : steps) {
    auto m = load_model(checkpoint_dir(run_dir, s));
    at::NoGradGuard ng;
    std::vector<at::Tensor> reps;
    for (uint64_t k = 0; k < 16; ++k) reps.push_back(repeated_random_tokens(*m, half, 1000 + k, 1));
    at::Tensor seqs = at::cat(reps, 0);
    ind = induction_scores(*m, seqs);
    prev = at::zeros_like(ind);
    for (int k = 0; k < 4; ++k) prev += detect_head(*m, seqs[k], previous_token_pattern(seqs[k])) / 4.0;
    at::Tensor w = d.heldout_windows;
    double total = 0;
    for (int64_t i = 0; i < w.size(0); i += 64) {
      at::Tensor b = w.slice(0, i, std::min(i + 64, w.size(0)));
      total += HookedTransformer::per_token_loss(m->forward(b), b).sum().item<double>();
    }
    heldout = total / (w.size(0) * (w.size(1) - 1));
    store.set_analysis(s, "lm.heldout_loss", heldout);
    for (int l = 0; l < cfg.layers; ++l) {
      store.set_analysis(s, "lm.induction_best_L" + std::to_string(l), ind[l].max().item<double>());
      store.set_analysis(s, "lm.prev_token_best_L" + std::to_string(l), prev[l].max().item<double>());
    }
  }
  json ib = json::array(), pb = json::array();
  for (int l = 0; l < cfg.layers; ++l) {
    ib.push_back({{"layer", l}, {"head", ind[l].argmax().item<int64_t>()}, {"score", ind[l].max().item<double>()}});
    pb.push_back({{"layer", l}, {"head", prev[l].argmax().item<int64_t>()}, {"score", prev[l].max().item<double>()}});
  }
  const int64_t steps_run = store.meta("steps_run") ? std::stoll(*store.meta("steps_run")) : steps.back();
  json summary = {
      {"recipe", "lm"},
      {"config", cfg.to_json()},
      {"steps_run", steps_run},
      {"tokens_seen", steps_run * cfg.batch * cfg.n_ctx},
      {"train_tokens", d.train.size(0)},
      {"heldout_tokens", d.heldout.size(0)},
      {"heldout_loss", heldout},
      {"unigram_loss", uni},
      {"bigram_loss", bi},
      {"best_induction_score", ib},
      {"best_prev_token_score", pb},
      {"definitions",
       "losses in nats per token on the held-out documents (every 20th) cut into windows of n_ctx; unigram: add-one "
       "counts of the training stream; bigram: training counts smoothed towards the unigram with 100 pseudo-counts; "
       "induction score on 16 sequences of <s> + 31 random tokens repeated (head detectors)"},
      {"checkpoints", steps},
  };
  write_file_atomic(join_path(run_dir, "summary.json"), summary.dump(2) + "\n");
  auto tr = store.series();
  auto an = store.analysis_series();
  Report rep("Toy language model: " + cfg.model_config().model_name);
  rep.add_summary(summary);
  Series uni_line, bi_line;
  for (auto& [s, v] : tr["heldout_loss"]) uni_line.push_back({s, uni}), bi_line.push_back({s, bi});
  rep.add_chart("Loss", "step", false,
                {{"train loss", tr["train_loss"]}, {"held-out loss", tr["heldout_loss"]}, {"unigram", uni_line}, {"bigram", bi_line}});
  std::vector<std::pair<std::string, Series>> heads;
  for (int l = 0; l < cfg.layers; ++l) {
    heads.push_back({"induction L" + std::to_string(l), an["lm.induction_best_L" + std::to_string(l)]});
    heads.push_back({"prev-token L" + std::to_string(l), an["lm.prev_token_best_L" + std::to_string(l)]});
  }
  rep.add_chart("Best head scores per layer over checkpoints", "step", false, heads);
  rep.write(join_path(run_dir, "report.html"));
  return summary;
}

json run_lm(const LmConfig& cfg, const std::string& run_dir, bool resume) {
  cfg.validate("lm");
  LmTask task(cfg, run_dir);
  train(task, cfg.trainer_config(), run_dir, resume);
  return analyze_lm(run_dir);
}

}  // namespace mechlens
