// The training lab: a trainable engine (an optimizer step is seen by the next forward,
// tied and fused weights stay one storage, backward hooks fire or fail clearly), the
// trainer's schedules and metrics store, the grokking recipe's exact init and split,
// and the Fourier analysis identities.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

#include "mechlens/analysis/fourier.h"
#include "mechlens/core/error.h"
#include "mechlens/model/hooked_transformer.h"
#include "mechlens/train/metrics_store.h"
#include "mechlens/train/optimizer.h"
#include "mechlens/train/python_random.h"
#include "mechlens/train/schedule.h"
#include "mechlens/train/tasks/addition.h"
#include "mechlens/train/tasks/grokking.h"
#include "mechlens/train/tasks/lm.h"
#include "mechlens/train/corpus.h"
#include "mechlens/tokenize/sentencepiece.h"
#include "mechlens/core/io.h"
#include "mechlens/train/tasks/superposition.h"
#include "test_util.h"

using namespace mechlens;

namespace {
ModelConfig toy_cfg() {
  ModelConfig c;
  c.n_layers = 2, c.d_model = 32, c.n_heads = 4, c.d_head = 8, c.d_mlp = 64, c.d_vocab = 50, c.n_ctx = 16;
  return c;
}
at::Tensor toks() { return at::tensor(std::vector<int64_t>{3, 1, 4, 1, 5, 9, 2, 6, 7, 8, 10, 11}, at::kLong).view({2, 6}); }
std::string tmp_dir(const std::string& name) {
  auto d = std::filesystem::temp_directory_path() / ("mechlens_test_" + name + "_" + std::to_string(::getpid()));
  std::filesystem::remove_all(d);
  std::filesystem::create_directories(d);
  return d.string();
}
}  // namespace

TEST(TrainableEngine, QkvWeightsAreViewsOfOneStorage) {
  HookedTransformer m(toy_cfg(), random_state_dict(toy_cfg(), 1), "none");
  auto params = m.parameters();
  std::map<std::string, at::Tensor> P(params.begin(), params.end());
  ASSERT_TRUE(P.count("blocks.0.attn.W_qkv"));
  EXPECT_FALSE(P.count("blocks.0.attn.W_Q"));  // a view, not a storage
  const at::Tensor& W_Q = m.state_dict().at("blocks.0.attn.W_Q");
  EXPECT_EQ(W_Q.storage().data(), P.at("blocks.0.attn.W_qkv").storage().data());
  // Editing the storage in place is what the views (and the next forward) see.
  at::Tensor before = m.forward(toks());
  {
    at::NoGradGuard ng;
    P.at("blocks.0.attn.W_qkv").mul_(1.5);
  }
  EXPECT_CLOSE(m.state_dict().at("blocks.0.attn.W_Q"), W_Q, 0, "view follows storage");
  at::Tensor after = m.forward(toks());
  EXPECT_GT(mechlens::testing::max_abs_diff(before, after), 1e-4);
  // A fresh model from the (viewed) state dict computes the same thing: nothing is stale.
  StateDict copy;
  for (auto& [n, t] : m.state_dict()) copy[n] = t.clone();
  HookedTransformer fresh(toy_cfg(), copy, "none");
  EXPECT_CLOSE(fresh.forward(toks()), after, 1e-5, "fresh model from state_dict");
}

TEST(TrainableEngine, TiedEmbeddingsStayOneTensor) {
  ModelConfig c = toy_cfg();
  c.tie_word_embeddings = true;
  StateDict sd = random_state_dict(c, 2);
  sd["unembed.W_U"] = sd.at("embed.W_E").t().clone();
  HookedTransformer m(c, sd, "none");
  EXPECT_EQ(m.state_dict().at("unembed.W_U").data_ptr(), m.state_dict().at("embed.W_E").data_ptr());
  for (auto& [n, t] : m.parameters()) EXPECT_NE(n, "unembed.W_U");
  // Gradient reaches W_E from both ends, and an update moves both.
  m.set_requires_grad(true);
  HookedTransformer::loss(m.forward(toks()), toks()).backward();
  at::Tensor W_E;
  for (auto& [n, t] : m.parameters())
    if (n == "embed.W_E") W_E = t;
  ASSERT_TRUE(W_E.grad().defined());
  {
    at::NoGradGuard ng;
    W_E.sub_(W_E.grad() * 0.1);
  }
  EXPECT_CLOSE(m.state_dict().at("unembed.W_U"), W_E.t(), 0, "tied after update");
}

TEST(TrainableEngine, OptimizerStepIsSeenByTheNextForward) {
  for (std::string kind : {"adamw", "adam", "sgd"}) {
    HookedTransformer m(toy_cfg(), random_state_dict(toy_cfg(), 3), "none");
    m.set_requires_grad(true, {"unembed.b_U"});
    NamedTensors trainable;
    for (auto& [n, t] : m.parameters())
      if (t.requires_grad()) trainable.emplace_back(n, t);
    EXPECT_EQ(trainable.size() + 1, m.parameters().size()) << kind;
    OptimizerConfig oc;
    oc.kind = kind, oc.lr = 1e-2, oc.weight_decay = 0.1, oc.momentum = 0.9;
    Optimizer opt(oc, trainable);
    at::Tensor l0 = HookedTransformer::loss(m.forward(toks()), toks());
    l0.backward();
    opt.step(oc.lr);
    opt.zero_grad();
    at::Tensor l1 = HookedTransformer::loss(m.forward(toks()), toks());
    EXPECT_LT(l1.item<double>(), l0.item<double>()) << kind << ": one step downhill lowers the loss";
    // The frozen bias is untouched; the optimizer's state round-trips.
    EXPECT_EQ(m.state_dict().at("unembed.b_U").abs().max().item<double>(), 0.0);
    StateDict st = opt.state();
    if (kind != "sgd") EXPECT_EQ(st.at("blocks.0.attn.W_qkv.step").item<int64_t>(), 1);
    Optimizer opt2(oc, trainable);
    opt2.load_state(st, "test");
    StateDict st2 = opt2.state();
    ASSERT_EQ(st.size(), st2.size()) << kind;
    for (auto& [n, t] : st) EXPECT_TRUE(at::equal(t, st2.at(n))) << kind << " " << n;
  }
}

TEST(TrainableEngine, BackwardHooksFireWithoutTrainableWeights) {
  HookedTransformer m(toy_cfg(), random_state_dict(toy_cfg(), 4), "none");
  int fired = 0;
  at::Tensor g;
  m.add_backward_hook(names_in({"blocks.1.hook_resid_pre"}), [&](const at::Tensor& grad, const HookPoint&) {
    ++fired, g = grad.clone();
    return std::optional<at::Tensor>();
  });
  at::Tensor loss = HookedTransformer::loss(m.forward(toks()), toks());
  loss.backward();
  EXPECT_EQ(fired, 1);
  ASSERT_TRUE(g.defined());
  EXPECT_EQ(g.sizes(), (std::vector<int64_t>{2, 6, 32}));
  EXPECT_GT(g.abs().max().item<double>(), 0);
  // Under no_grad nothing could reach the hook: a clear error, not silence.
  at::NoGradGuard ng;
  try {
    m.forward(toks());
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("blocks.1.hook_resid_pre"), std::string::npos);
  }
}

TEST(TrainableEngine, GradientsFlowThroughEditingHooks) {
  HookedTransformer m(toy_cfg(), random_state_dict(toy_cfg(), 5), "none");
  m.set_requires_grad(true);
  // Zeroing the token embedding's output cuts W_E off from the loss; W_pos still learns.
  at::Tensor logits = m.run_with_hooks(toks(), {{names_in({"hook_embed"}), [](const at::Tensor& x, const HookPoint&) {
                                                   return x * 0;
                                                 }}});
  HookedTransformer::loss(logits, toks()).backward();
  std::map<std::string, at::Tensor> P;
  for (auto& [n, t] : m.parameters()) P[n] = t;
  EXPECT_EQ(P.at("embed.W_E").grad().abs().max().item<double>(), 0.0);
  EXPECT_GT(P.at("pos_embed.W_pos").grad().abs().max().item<double>(), 0.0);
  EXPECT_GT(P.at("blocks.0.attn.W_qkv").grad().abs().max().item<double>(), 0.0);
}

TEST(TrainableEngine, LastPositionOnlyMatchesTheFullForward) {
  ModelConfig rot = toy_cfg();
  rot.positional_embedding_type = PosEmbed::Rotary, rot.normalization_type = NormType::RMS;
  rot.act_fn = ActFn::Silu, rot.gated_mlp = true;
  ModelConfig attn = toy_cfg();
  attn.attn_only = true;
  ModelConfig gqa = rot;
  gqa.n_key_value_heads = 2;
  for (const ModelConfig& c : {toy_cfg(), rot, attn, gqa}) {
    HookedTransformer m(c, random_state_dict(c, 6), "none");
    at::Tensor full = m.forward(toks());
    ForwardOptions o;
    o.last_position_only = true;
    at::Tensor last = m.forward(toks(), o);
    ASSERT_EQ(last.sizes(), (std::vector<int64_t>{2, 1, 50}));
    EXPECT_CLOSE(last, full.slice(1, 5, 6), 1e-5, "last position, " + to_string(c.positional_embedding_type));
  }
}

TEST(Schedules, WarmupCosineAndCheckpointSteps) {
  LrSchedule w{"constant", 1e-3, 10, 0, 100};
  EXPECT_EQ(w.at(0), 0.0);  // LambdaLR(min(step / 10, 1)): the first update has lr 0
  EXPECT_DOUBLE_EQ(w.at(5), 5e-4);
  EXPECT_DOUBLE_EQ(w.at(10), 1e-3);
  EXPECT_DOUBLE_EQ(w.at(99), 1e-3);
  LrSchedule c{"cosine", 1.0, 0, 0.1, 100};
  EXPECT_DOUBLE_EQ(c.at(0), 1.0);
  EXPECT_NEAR(c.at(50), 0.55, 1e-12);
  EXPECT_NEAR(c.at(100), 0.1, 1e-12);
  auto lin = checkpoint_steps("linear", 5, 100);
  EXPECT_EQ(lin, (std::vector<int64_t>{0, 25, 50, 75, 100}));
  auto lg = checkpoint_steps("log", 4, 1000);
  EXPECT_EQ(lg, (std::vector<int64_t>{0, 10, 100, 1000}));
  EXPECT_THROW(checkpoint_steps("cubic", 4, 10), Error);
}

TEST(PythonRandom, ShuffleIsCPythonsBitForBit) {
  // Values printed by CPython 3.11: random.seed(s); x = list(range(n)); random.shuffle(x)
  PythonRandom r0(0);
  std::vector<int> x(20);
  for (int i = 0; i < 20; ++i) x[i] = i;
  r0.shuffle(x);
  EXPECT_EQ(x, (std::vector<int>{10, 18, 16, 14, 0, 17, 11, 2, 3, 9, 5, 7, 4, 19, 6, 15, 8, 1, 13, 12}));
  PythonRandom r3(3);
  std::vector<int> y(12769);
  for (int i = 0; i < 12769; ++i) y[i] = i;
  r3.shuffle(y);
  EXPECT_EQ(std::vector<int>(y.begin(), y.begin() + 8), (std::vector<int>{4200, 10769, 11843, 154, 10289, 317, 9719, 6363}));
  EXPECT_EQ(std::vector<int>(y.end() - 3, y.end()), (std::vector<int>{8916, 9709, 3898}));
}

TEST(Grokking, InitSplitAndFirstLossAreTheAuthors) {
  // Golden values from ../shared/reference/baselines/grokking_torch.py (the authors' code,
  // torch 1.13): torch.manual_seed(0); Transformer(p); loss on the seed-0, frac 0.3 split.
  for (auto [p, loss, we_sum, wu35, win72] :
       std::vector<std::tuple<int64_t, double, double, double, double>>{
           {113, 4.764052264850623, -11.524513244628906, 0.03496752679347992, -0.019059689715504646},
           {23, 3.3869455611006325, -0.477954626083374, -0.10482431203126907, 0.08558278530836105}}) {
    GrokkingConfig c;
    c.p = p, c.frac_train = 0.3, c.seed = 0;
    StateDict s = grokking_init(c);
    EXPECT_NEAR(s.at("embed.W_E").sum().item<double>(), we_sum, 1e-4);
    EXPECT_EQ(s.at("unembed.W_U")[3][5].item<float>(), static_cast<float>(wu35));
    EXPECT_EQ(s.at("blocks.0.mlp.W_in")[2][7].item<float>(), static_cast<float>(win72));  // authors' W_in[7, 2]
    ModularData d = modular_addition_data(p, 0.3, 0);
    EXPECT_EQ(d.train_x.size(0), static_cast<int64_t>(0.3 * p * p));
    GrokkingTask task(c);
    // The plain forward computes what the authors' code computes, to float32 rounding
    // (bit-equal where the same matmul kernels run: 1e-8 apart on an AVX2-only CPU).
    at::Tensor logits = task.model().forward(d.train_x).select(1, 2);
    EXPECT_NEAR(cross_entropy(logits, d.train_y, true).item<double>(), loss, 1e-7) << "p = " << p;
    // Training folds the embeddings into W_qkv and computes the last position only: the
    // same sums in another order, equal to float32 rounding.
    Metrics m;
    EXPECT_NEAR(task.loss(0, m).item<double>(), loss, 1e-7) << "p = " << p;
  }
  ModularData d = modular_addition_data(113, 0.3, 0);
  EXPECT_EQ(d.train_x[0][0].item<int64_t>(), 18);  // the authors' first training pair (18, 34)
  EXPECT_EQ(d.train_x[0][1].item<int64_t>(), 34);
  EXPECT_EQ(d.train_x[2][0].item<int64_t>(), 55);
  EXPECT_EQ(d.train_x[2][1].item<int64_t>(), 28);
  EXPECT_EQ(d.is_train.sum().item<int64_t>(), d.train_x.size(0));
}

TEST(Fourier, BasisIsOrthonormal) {
  for (int64_t p : {113, 10, 7}) {
    at::Tensor B = fourier_basis(p);
    ASSERT_EQ(B.sizes(), (std::vector<int64_t>{p, p}));
    EXPECT_CLOSE(at::matmul(B, B.t()), at::eye(p, at::kDouble), 1e-10, "B B^T, p = " + std::to_string(p));
  }
}

TEST(Fourier, KeyAndRestReconstructTheLogits) {
  const int64_t p = 31;
  at::Tensor L = at::randn({p * p, p}, at::kDouble);
  LogitSplit s = split_logits(L, p, {3, 7, 11});
  EXPECT_CLOSE(s.key + s.rest, L, 1e-12, "key + rest");
  EXPECT_LT((s.key * s.rest).sum().abs().item<double>(), 1e-9);  // orthogonal parts
  at::Tensor D = sum_directions(p, {3, 7, 11});
  EXPECT_CLOSE(at::matmul(D.t(), D), at::eye(6, at::kDouble), 1e-10, "directions orthonormal");
  // Logits made of cos(w (a + b - c)) for a key frequency lie wholly in the key part.
  at::Tensor a = at::arange(p, at::kDouble).view({p, 1, 1}), b = at::arange(p, at::kDouble).view({1, p, 1});
  at::Tensor c = at::arange(p, at::kDouble).view({1, 1, p});
  at::Tensor alg = at::cos(2 * M_PI * 7 * (a + b - c) / p).reshape({p * p, p});
  LogitSplit s2 = split_logits(alg, p, {3, 7});
  EXPECT_LT(s2.rest.abs().max().item<double>(), 1e-10);
  LogitSplit s3 = split_logits(alg, p, {3, 5});
  EXPECT_LT(s3.key.abs().max().item<double>(), 1e-10);
}

TEST(Fourier, KeyFrequenciesFindPlantedNeurons) {
  const int64_t p = 23;
  at::Tensor a = at::arange(p, at::kDouble).repeat_interleave(p), b = at::arange(p, at::kDouble).repeat({p});
  std::vector<at::Tensor> cols;
  for (int i = 0; i < 6; ++i) cols.push_back(at::cos(2 * M_PI * 4 * (a + b) / p + i));
  for (int i = 0; i < 4; ++i) cols.push_back(at::sin(2 * M_PI * 9 * a / p) * at::cos(2 * M_PI * 9 * b / p + i));
  cols.push_back(at::zeros({p * p}, at::kDouble));  // a dead neuron
  KeyFrequencies kf = key_frequencies(at::stack(cols, 1), p);
  EXPECT_EQ(kf.counts.at(4), 6);
  EXPECT_EQ(kf.counts.at(9), 4);
  EXPECT_EQ(kf.dead, 1);
  EXPECT_EQ(kf.key(1), (std::vector<int64_t>{4, 9}));
  for (int i = 0; i < 10; ++i) EXPECT_NEAR(kf.neuron_frac[i], 1.0, 1e-9);
}

TEST(MetricsStore, RowsSurviveReopenAndTruncate) {
  const std::string dir = tmp_dir("metrics");
  const std::string path = dir + "/metrics.sqlite";
  {
    MetricsStore s(path);
    for (int i = 0; i < 10; ++i) s.add(i, "train_loss", 10.0 - i), s.add(i, "lr", 0.1);
    s.add(9, "test_loss", NAN);
    s.flush();
    s.set_meta("steps_run", "10");
  }
  MetricsStore s(path);
  auto tl = s.series("train_loss");
  ASSERT_EQ(tl.size(), 10u);
  EXPECT_EQ(tl[3].second, 7.0);
  EXPECT_TRUE(std::isnan(s.series("test_loss")[0].second));
  EXPECT_EQ(*s.meta("steps_run"), "10");
  s.truncate_after(4);
  EXPECT_EQ(s.series("train_loss").size(), 5u);
  s.export_jsonl(dir + "/m.jsonl");
  std::string j = read_file(dir + "/m.jsonl");
  EXPECT_EQ(std::count(j.begin(), j.end(), '\n'), 5);
  EXPECT_NE(j.find("{\"lr\":0.1,\"step\":0,\"train_loss\":10.0}"), std::string::npos) << j;
  // A file that is not a database: an Error naming it.
  write_file_atomic(dir + "/bad.sqlite", std::string(4096, 'x'));
  try {
    MetricsStore bad(dir + "/bad.sqlite");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("bad.sqlite"), std::string::npos);
  }
  std::filesystem::remove_all(dir);
}

TEST(Superposition, DimensionsPerFeatureOfTightFrames) {
  // Five unit vectors at 72 degrees form a tight frame in 2 dimensions: D_i = 2/5 each.
  std::vector<float> v;
  for (int i = 0; i < 5; ++i) v.push_back(std::cos(2 * M_PI * i / 5)), v.push_back(std::sin(2 * M_PI * i / 5));
  at::Tensor pent = at::tensor(v).view({5, 2});
  at::Tensor D = dimensions_per_feature(pent);
  EXPECT_CLOSE(D, at::full({5}, 0.4, at::kDouble), 1e-6, "pentagon");
  EXPECT_NEAR(D.sum().item<double>(), 2.0, 1e-6);
  EXPECT_EQ(classify_geometry(pent * 1.2).name, "pentagon");
  // An orthonormal pair plus unused features: D = 1, 1, 0, 0, 0.
  at::Tensor orth = at::zeros({5, 2});
  orth[0][0] = 1, orth[1][1] = 1, orth[2][0] = 0.01;
  EXPECT_CLOSE(dimensions_per_feature(orth).slice(0, 0, 2), at::ones({2}, at::kDouble), 2e-4, "orthogonal pair");
  EXPECT_EQ(classify_geometry(orth).name, "orthogonal2");
  // Two antipodal pairs: each D_i = 1/2, and every D_i lies in [0, 1].
  at::Tensor pairs = at::tensor(std::vector<float>{1, 0, -1, 0, 0, 1, 0, -1, 0, 0}).view({5, 2});
  at::Tensor Dp = dimensions_per_feature(pairs);
  EXPECT_NEAR(Dp[0].item<double>(), 0.5, 1e-6);
  EXPECT_NEAR(Dp.sum().item<double>(), 2.0, 1e-6);
  EXPECT_EQ(classify_geometry(pairs).name, "two_pairs");
  at::Tensor R = at::randn({7, 3});
  at::Tensor Dr = dimensions_per_feature(R);
  EXPECT_GE(Dr.min().item<double>(), 0.0);
  EXPECT_LE(Dr.max().item<double>(), 1.0 + 1e-9);
}

TEST(Superposition, DenseFeaturesTrainToTheTwoMostImportantOrthogonal) {
  // Reduced form of Elhage et al.'s dense case: with every feature present, the two
  // most important of five get orthogonal directions and the rest none.
  SuperpositionConfig c;
  c.sparsity = {0.0};
  c.instances = 2, c.steps = 1500, c.batch = 256, c.lr = 1e-2, c.checkpoints = 2;
  SuperpositionTask task(c);
  NamedTensors params = task.parameters();
  Optimizer opt(c.trainer_config().optim, params);
  for (int64_t s = 0; s < c.steps; ++s) {
    Metrics m;
    task.loss(s, m).backward();
    opt.step(c.lr);
    opt.zero_grad();
  }
  for (int64_t i = 0; i < 2; ++i) {
    Geometry g = classify_geometry(task.W()[i].detach());
    EXPECT_EQ(g.name, "orthogonal2") << "instance " << i;
    EXPECT_EQ(g.represented, (std::vector<int64_t>{0, 1}));
  }
}

TEST(Addition, BatchesAreCorrectSumsAndStepDeterministic) {
  AdditionConfig c;
  at::Tensor t = addition_batch(c, 0, 7, 32);
  ASSERT_EQ(t.sizes(), (std::vector<int64_t>{32, 18}));
  EXPECT_TRUE(at::equal(t, addition_batch(c, 0, 7, 32)));  // a resumed run sees the same batch
  EXPECT_FALSE(at::equal(t, addition_batch(c, 0, 8, 32)));
  for (int64_t r = 0; r < 32; ++r) {
    auto num = [&](int64_t from, int64_t n) {
      int64_t v = 0;
      for (int64_t i = 0; i < n; ++i) v = v * 10 + t[r][from + i].item<int64_t>();
      return v;
    };
    EXPECT_EQ(t[r][5].item<int64_t>(), 10);   // '+'
    EXPECT_EQ(t[r][11].item<int64_t>(), 11);  // '='
    EXPECT_EQ(num(0, 5) + num(6, 5), num(12, 6));
  }
  EXPECT_EQ(answer_digit_name(c, 0), "c5");
  EXPECT_EQ(answer_digit_name(c, 5), "c0");
}

TEST(Lm, NgramBaselinesAreTheSmoothedCounts) {
  // Training stream 0 1 0 1 ... (n = 1000) over a vocabulary of 4; one window 0 1 0 1.
  const int64_t n = 1000, V = 4;
  at::Tensor train = at::arange(n, at::kLong).remainder(2);
  at::Tensor windows = at::tensor(std::vector<int64_t>{0, 1, 0, 1}, at::kLong).view({1, 4});
  auto [uni, bi] = ngram_baselines(train, windows, V);
  const double p0 = (n / 2 + 1.0) / (n + V), p1 = p0;  // add-one unigram
  EXPECT_NEAR(uni, -(2 * std::log(p1) + std::log(p0)) / 3, 1e-12);
  // Bigram counts: (0, 1) 500 times, (1, 0) 499 times; 100 pseudo-counts towards the unigram.
  const double b01 = (500 + 100 * p1) / (500 + 100), b10 = (499 + 100 * p0) / (499 + 100);
  EXPECT_NEAR(bi, -(2 * std::log(b01) + std::log(b10)) / 3, 1e-12);
}

TEST(Lm, InductionCurriculumWindowsAndTheirLossWeights) {
  LmConfig c;
  c.vocab = 300, c.n_ctx = 64, c.batch = 64, c.random_repeat_frac = 0.5, c.seed = 4;
  at::Tensor train = at::arange(5000, at::kLong) % 250 + 3;  // a text stream stand-in
  LmBatch b = lm_batch(c, train, 17);
  ASSERT_TRUE(b.weights.defined());
  const int64_t h = (c.n_ctx - 1) / 2;
  const int64_t nr = b.random_windows.sum().item<int64_t>();
  EXPECT_GT(nr, 16);  // about half of 64
  EXPECT_LT(nr, 48);
  for (int64_t i = 0; i < c.batch; ++i) {
    at::Tensor t = b.tokens[i], w = b.weights[i];
    if (b.random_windows[i].item<bool>()) {
      EXPECT_EQ(t[0].item<int64_t>(), 1);  // <s>
      EXPECT_TRUE(t.slice(0, h + 1, 2 * h + 1).equal(t.slice(0, 1, h + 1)));  // X X
      // Only the targets h+2 .. 2h (predictable from the first copy) count.
      for (int64_t p = 1; p < c.n_ctx; ++p) EXPECT_EQ(w[p - 1].item<float>(), (p > h + 1 && p <= 2 * h) ? 1.f : 0.f) << p;
      EXPECT_GE(t.slice(0, 1).min().item<int64_t>(), 3);  // pieces, no specials
    } else {
      EXPECT_EQ(w.sum().item<float>(), c.n_ctx - 1);  // text counts everywhere
      EXPECT_EQ(t[1].item<int64_t>() - 3, (t[0].item<int64_t>() - 3 + 1) % 250);  // consecutive stream
    }
  }
  // Drawn from (seed, step): the same batch again, another one for another step.
  EXPECT_TRUE(lm_batch(c, train, 17).tokens.equal(b.tokens));
  EXPECT_FALSE(lm_batch(c, train, 18).tokens.equal(b.tokens));
  // Without random windows nothing is weighed, and the draws are those of before.
  c.random_repeat_frac = 0;
  EXPECT_FALSE(lm_batch(c, train, 17).weights.defined());
}

TEST(Lm, CorporaAndASentencePieceVocabularyTrainedHere) {
  Corpus moby = load_corpus("moby-dick");
  ASSERT_EQ(moby.docs.size(), 138u);  // etymology, extracts, 135 chapters, epilogue
  EXPECT_EQ(std::count(moby.heldout.begin(), moby.heldout.end(), true), 6);
  EXPECT_NE(moby.docs[2].find("Call me Ishmael"), std::string::npos);
  Corpus sotu = load_corpus("sotu");
  EXPECT_GT(sotu.docs.size(), 200u);
  EXPECT_THROW(load_corpus("/nonexistent/corpus.txt"), Error);
  // SentencePiece's own trainer, then the tokenizer round-trips text.
  const std::string dir = tmp_dir("spm");
  std::string text;
  for (int i = 2; i < 12; ++i) text += moby.docs[i];
  write_file_atomic(dir + "/t.txt", text);
  train_sentencepiece(dir + "/t.txt", dir + "/m", 800);
  auto tok = SentencePieceTokenizer::load(dir + "/m.model", "");
  EXPECT_EQ(tok->vocab_size(), 800);
  const std::string s = "Call me Ishmael. Some years ago";
  auto ids = tok->encode(s);
  EXPECT_LT(ids.size(), s.size());  // merges were learnt
  EXPECT_EQ(tok->decode(ids), s);
  std::filesystem::remove_all(dir);
}
