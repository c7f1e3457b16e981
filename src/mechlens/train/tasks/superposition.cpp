#include "mechlens/train/tasks/superposition.h"

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "mechlens/core/error.h"
#include "mechlens/core/io.h"
#include "mechlens/loading/safetensors.h"
#include "mechlens/train/metrics_store.h"
#include "mechlens/train/recipe_config.h"
#include "mechlens/train/report.h"

namespace mechlens {

using nlohmann::json;

namespace {
// The phase diagram's grid: sparsity down the rows, feature 1's importance across.
std::vector<double> grid_sparsity() { return {0.0, 0.5, 0.75, 0.9, 0.95, 0.975, 0.99, 0.995}; }
std::vector<double> grid_ratio() {
  std::vector<double> r;
  for (int i = 0; i < 9; ++i) r.push_back(std::pow(10.0, -1.0 + 0.25 * i));  // 0.1 .. 10
  return r;
}
}  // namespace

void SuperpositionConfig::validate(const std::string& where) const {
  if (!phase_diagram) {
    if (features < 1 || hidden < 1) fail(where, "features and hidden must be >= 1");
    if (sparsity.empty()) fail(where, "give at least one sparsity");
    for (double s : sparsity)
      if (!(s >= 0 && s < 1)) fail(where, "each sparsity must lie in [0, 1)");
    if (instances < 1) fail(where, "instances must be >= 1");
    if (!(importance_decay > 0)) fail(where, "importance decay must be > 0");
  }
  if (batch < 1) fail(where, "batch must be >= 1");
  trainer_config().validate(where);
}

json SuperpositionConfig::to_json() const {
  return with_common_json(*this, {{"recipe", "superposition"}, {"features", features}, {"hidden", hidden}, {"sparsity", sparsity},
          {"instances", instances}, {"importance_decay", importance_decay}, {"relu", relu},
          {"phase_diagram", phase_diagram}, {"batch", batch}, {"steps", steps}});
}

SuperpositionConfig SuperpositionConfig::from_json(const json& j, const std::string& where) {
  SuperpositionConfig c;
  if (json_get_or<std::string>(j, "recipe", "", where) != "superposition") fail(where, "not a superposition run's config");
  c.features = json_get<int64_t>(j, "features", where);
  c.hidden = json_get<int64_t>(j, "hidden", where);
  c.sparsity = json_get<std::vector<double>>(j, "sparsity", where);
  c.instances = json_get<int64_t>(j, "instances", where);
  c.importance_decay = json_get<double>(j, "importance_decay", where);
  c.relu = json_get<bool>(j, "relu", where);
  c.phase_diagram = json_get<bool>(j, "phase_diagram", where);
  c.batch = json_get<int64_t>(j, "batch", where);
  c.steps = json_get<int64_t>(j, "steps", where);
  read_common_json(c, j, where);
  c.validate(where);
  return c;
}

TrainerConfig SuperpositionConfig::trainer_config() const {
  TrainerConfig t = common_trainer_config(*this, "superposition");
  t.steps = steps, t.eval_every = std::max<int64_t>(1, steps / 20), t.log_every = 1000;
  return t;
}

at::Tensor SuperpositionConfig::probabilities() const {
  std::vector<double> p;
  if (phase_diagram) {
    for (double s : grid_sparsity())
      for (size_t r = 0; r < grid_ratio().size(); ++r) p.push_back(1 - s);
  } else {
    for (double s : sparsity)
      for (int64_t i = 0; i < instances; ++i) p.push_back(1 - s);
  }
  return at::tensor(p, at::kDouble).to(at::kFloat);
}

at::Tensor SuperpositionConfig::importances() const {
  if (phase_diagram) {
    std::vector<float> v;
    for (size_t s = 0; s < grid_sparsity().size(); ++s)
      for (double r : grid_ratio()) v.push_back(1.0f), v.push_back(static_cast<float>(r));
    return at::tensor(v).view({-1, 2});
  }
  at::Tensor imp = at::pow(importance_decay, at::arange(features, at::kDouble)).to(at::kFloat);
  return imp.unsqueeze(0).expand({static_cast<int64_t>(sparsity.size()) * instances, features}).contiguous();
}

std::vector<double> SuperpositionConfig::instance_importance_ratio() const {
  std::vector<double> out;
  for (size_t s = 0; s < grid_sparsity().size(); ++s)
    for (double r : grid_ratio()) out.push_back(r);
  return out;
}

SuperpositionTask::SuperpositionTask(const SuperpositionConfig& cfg) : cfg_(cfg) {
  prob_ = cfg.probabilities();
  importance_ = cfg.importances();
  const int64_t I = prob_.size(0), F = cfg.phase_diagram ? 2 : cfg.features, H = cfg.phase_diagram ? 1 : cfg.hidden;
  at::manual_seed(cfg.seed);
  // nn.init.xavier_normal_ on [I, F, H]: fan_in = F * H, fan_out = I * H.
  const double std = std::sqrt(2.0 / static_cast<double>(F * H + I * H));
  W_ = (at::randn({I, F, H}) * std).requires_grad_(true);
  b_ = at::zeros({I, F}).requires_grad_(true);
}

at::Tensor SuperpositionTask::batch(uint64_t seed, int64_t step, int64_t n) const {
  auto g = step_generator(seed, step, 5);
  const int64_t I = W_.size(0), F = W_.size(1);
  at::Tensor feat = at::rand({n, I, F}, g);
  at::Tensor keep = at::rand({n, I, F}, g) <= prob_.view({1, I, 1});
  return at::where(keep, feat, at::zeros({}, feat.options()));
}

at::Tensor SuperpositionTask::instance_loss(const at::Tensor& x) const {
  at::Tensor h = at::einsum("bif,ifh->bih", {x, W_});
  at::Tensor out = at::einsum("bih,ifh->bif", {h, W_}) + b_;
  if (cfg_.relu) out = at::relu(out);
  return (importance_.unsqueeze(0) * (x.abs() - out).pow(2)).mean(at::IntArrayRef{0, 2});
}

at::Tensor SuperpositionTask::loss(int64_t step, Metrics&) { return instance_loss(batch(cfg_.seed, step, cfg_.batch)).sum(); }

void SuperpositionTask::evaluate(int64_t step, Metrics& m) {
  m["eval_loss"] = instance_loss(batch(cfg_.seed + 999, 0, 8 * cfg_.batch)).sum().item<double>();
}

void SuperpositionTask::save_checkpoint(const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) fail(dir, "cannot create folder");
  save_safetensors(join_path(dir, "superposition.safetensors"), {{"W", W_.detach()}, {"b", b_.detach()}},
                   {{"format", "mechlens-superposition"}});
  json j = {{"format_version", 1}, {"kind", "toy-superposition"}, {"relu", cfg_.relu}};
  write_file_atomic(join_path(dir, "mechlens.json"), j.dump(2) + "\n");
}

std::pair<at::Tensor, at::Tensor> load_superposition_checkpoint(const std::string& dir) {
  const std::string path = join_path(dir, "superposition.safetensors");
  auto f = SafetensorsFile::open(path);
  if (!f->contains("W") || !f->contains("b")) fail(path, "not a superposition checkpoint (needs W and b)");
  at::Tensor W = f->get("W", at::kFloat), b = f->get("b", at::kFloat);
  if (W.dim() != 3 || b.dim() != 2 || b.size(0) != W.size(0) || b.size(1) != W.size(1))
    fail(path, "W must be [instances, features, hidden] and b [instances, features]");
  return {W, b};
}

at::Tensor dimensions_per_feature(const at::Tensor& W_in) {
  at::Tensor W = W_in.to(at::kDouble);
  at::Tensor norms = W.norm(2, 1, true);                       // [F, 1]
  at::Tensor W_hat = W / norms.clamp_min(1e-6);
  at::Tensor interference = at::matmul(W_hat, W.t()).pow(2);   // (W^_i . W_j)^2
  at::Tensor D = norms.squeeze(1).pow(2) / interference.sum(1).clamp_min(1e-12);
  return at::where(norms.squeeze(1) > 1e-6, D, at::zeros_like(D));
}

Geometry classify_geometry(const at::Tensor& W_in) {
  at::Tensor W = W_in.to(at::kDouble);
  const int64_t F = W.size(0), H = W.size(1);
  Geometry g;
  at::Tensor norms = W.norm(2, 1);
  for (int64_t i = 0; i < F; ++i)
    if (norms[i].item<double>() > 0.5) g.represented.push_back(i);
  const size_t k = g.represented.size();
  auto cosine = [&](int64_t i, int64_t j) {
    return (at::dot(W[i], W[j]) / (norms[i] * norms[j])).item<double>();
  };
  if (H == 2)
    for (int64_t i : g.represented) g.angles_deg.push_back(std::atan2(W[i][1].item<double>(), W[i][0].item<double>()) * 180 / M_PI);
  std::sort(g.angles_deg.begin(), g.angles_deg.end());
  if (k == 0) return g.name = "none", g;
  if (k == 1) return g.name = "dedicated1", g;
  if (H == 2 && k == 5) {
    at::Tensor D = dimensions_per_feature(W);
    bool ok = true;
    for (int64_t i : g.represented) ok &= std::abs(D[i].item<double>() - 0.4) <= 0.02;
    for (size_t i = 0; i < 5; ++i) {
      double d = (i + 1 < 5 ? g.angles_deg[i + 1] : g.angles_deg[0] + 360) - g.angles_deg[i];
      ok &= std::abs(d - 72) <= 5;
    }
    if (ok) return g.name = "pentagon", g;
  }
  if (k == 2) {
    double c = cosine(g.represented[0], g.represented[1]);
    if (std::abs(c) < 0.1) return g.name = "orthogonal2", g;
    if (c < -0.9) return g.name = "antipodal", g;
  }
  if (k == 4) {
    // Two antipodal pairs: each feature has exactly one partner at cos < -0.9.
    int pairs = 0;
    for (size_t a = 0; a < 4; ++a)
      for (size_t b = a + 1; b < 4; ++b) pairs += cosine(g.represented[a], g.represented[b]) < -0.9;
    if (pairs == 2) return g.name = "two_pairs", g;
  }
  return g.name = "other_" + std::to_string(k), g;
}

json analyze_superposition(const std::string& run_dir) {
  const std::string cfg_path = join_path(run_dir, "config.json");
  SuperpositionConfig cfg = SuperpositionConfig::from_json(read_json_file(cfg_path), cfg_path);
  std::vector<int64_t> steps = list_checkpoints(run_dir);
  if (steps.empty()) fail(run_dir, "no checkpoints to analyse (checkpoints/step_N)");
  MetricsStore store(join_path(run_dir, "metrics.sqlite"));
  store.clear_analysis("superposition.");
  SuperpositionTask probe(cfg);  // for the loss on a fixed evaluation batch
  at::Tensor prob = cfg.probabilities();
  json instances = json::array();
  at::Tensor W, b;
  for (int64_t s : steps) {
    std::tie(W, b) = load_superposition_checkpoint(checkpoint_dir(run_dir, s));
    if (W.sizes() != probe.W().sizes()) fail(checkpoint_dir(run_dir, s), "checkpoint does not match config.json");
    double total_dpf = 0;
    for (int64_t i = 0; i < W.size(0); ++i) total_dpf += dimensions_per_feature(W[i]).sum().item<double>();
    store.set_analysis(s, "superposition.mean_dims_per_feature_sum", total_dpf / W.size(0));
    // D* = hidden / ||W||_F^2, the paper's "dimensions per feature" of the whole instance.
    store.set_analysis(s, "superposition.mean_d_star",
                       (static_cast<double>(W.size(2)) / W.pow(2).sum(at::IntArrayRef{1, 2})).mean().item<double>());
  }
  // Final per-instance results.
  {
    at::NoGradGuard ng;
    at::Tensor Wp = probe.W(), bp = probe.b();
    Wp.copy_(W), bp.copy_(b);
  }
  at::Tensor final_loss;
  {
    at::NoGradGuard ng;
    final_loss = probe.instance_loss(probe.batch(cfg.seed + 999, 0, 8 * cfg.batch));
  }
  std::map<std::string, int> geometry_counts;
  std::vector<double> ratio = cfg.phase_diagram ? cfg.instance_importance_ratio() : std::vector<double>{};
  for (int64_t i = 0; i < W.size(0); ++i) {
    Geometry g = classify_geometry(W[i]);
    at::Tensor D = dimensions_per_feature(W[i]);
    json norms = json::array(), dpf = json::array();
    for (int64_t f = 0; f < W.size(1); ++f) {
      norms.push_back(std::round(W[i][f].norm().item<double>() * 1e4) / 1e4);
      dpf.push_back(std::round(D[f].item<double>() * 1e4) / 1e4);
    }
    const double sparsity = cfg.phase_diagram ? 1 - prob[i].item<double>() : cfg.sparsity[i / cfg.instances];
    json inst = {{"instance", i}, {"sparsity", sparsity}, {"norms", norms},
                 {"dims_per_feature", dpf}, {"geometry", g.name}, {"represented", g.represented},
                 {"angles_deg", g.angles_deg}, {"loss", final_loss[i].item<double>()}};
    if (cfg.phase_diagram) {
      // 2 features in 1 dimension: which are kept, and whether they share the dimension.
      const bool f0 = W[i][0][0].abs().item<double>() > 0.5, f1 = W[i][1][0].abs().item<double>() > 0.5;
      const bool opposite = (W[i][0][0] * W[i][1][0]).item<double>() < 0;
      inst["importance_ratio"] = ratio[i];
      inst["phase"] = f0 && f1 ? (opposite ? "superposition" : "both_same_sign") : f0 ? "feature0" : f1 ? "feature1" : "none";
    } else {
      inst["importance_decay"] = cfg.importance_decay;
    }
    geometry_counts[cfg.phase_diagram ? inst["phase"].get<std::string>() : g.name]++;
    instances.push_back(inst);
  }
  json by_sparsity = json::object();
  if (!cfg.phase_diagram)
    for (size_t s = 0; s < cfg.sparsity.size(); ++s) {
      std::map<std::string, int> c;
      for (int64_t i = 0; i < cfg.instances; ++i) c[instances[s * cfg.instances + i]["geometry"].get<std::string>()]++;
      by_sparsity[std::to_string(cfg.sparsity[s])] = c;
    }
  json summary = {
      {"recipe", "superposition"},
      {"config", cfg.to_json()},
      {"steps_run", store.meta("steps_run") ? std::stoll(*store.meta("steps_run")) : steps.back()},
      {"instances", instances},
      {"geometry_counts", geometry_counts},
      {"geometry_by_sparsity", by_sparsity},
      {"definitions",
       "represented: ||W_i|| > 0.5; dims_per_feature D_i = ||W_i||^2 / sum_j (W^_i . W_j)^2; pentagon: 5 "
       "represented, every D_i in 0.40 +- 0.02, neighbouring angles 72 +- 5 degrees; orthogonal2: 2 represented, "
       "|cos| < 0.1; two_pairs: 4 represented in 2 antipodal pairs (cos < -0.9)"},
      {"published",
       "Elhage et al. 2022, 5 features in 2 dimensions, importance 0.9^i: dense -> the 2 most important features "
       "orthogonal; sparse (1 - S ~ 0.01-0.02) -> a pentagon (every D_i = 2/5)"},
  };
  write_file_atomic(join_path(run_dir, "summary.json"), summary.dump(2) + "\n");

  Report rep(cfg.phase_diagram ? "Superposition phase diagram: 2 features in 1 dimension"
                               : "Toy models of superposition: " + std::to_string(cfg.features) + " features in " +
                                     std::to_string(cfg.hidden) + " dimensions");
  rep.add_summary({{"geometry_counts", geometry_counts}, {"geometry_by_sparsity", by_sparsity}});
  auto tr = store.series();
  auto an = store.analysis_series();
  rep.add_chart("Loss", "step", true, {{"train loss", tr["train_loss"]}, {"eval loss", tr["eval_loss"]}});
  rep.add_chart("Mean D* = hidden / ||W||^2 over instances", "step", false, {{"D*", an["superposition.mean_d_star"]}});
  if (W.size(2) == 2) {
    // One small SVG per instance: the columns of W in the hidden plane.
    std::string svg = "<h2>Feature directions (W_i in the hidden plane), final</h2><div>";
    for (int64_t i = 0; i < W.size(0); ++i) {
      svg += "<svg width=110 height=130 viewBox='-1.6 -1.6 3.2 3.8' style='margin:4px'><circle r=1 fill=none "
             "stroke=#ddd stroke-width=0.02 />";
      for (int64_t f = 0; f < W.size(1); ++f) {
        double x = W[i][f][0].item<double>(), y = -W[i][f][1].item<double>();
        char buf[200];
        std::snprintf(buf, sizeof buf, "<line x1=0 y1=0 x2=%.3f y2=%.3f stroke='hsl(%d,70%%,45%%)' stroke-width=0.06 />",
                      x, y, static_cast<int>(360 * f / W.size(1)));
        svg += buf;
      }
      char cap[160];
      std::snprintf(cap, sizeof cap, "<text x=0 y=2 font-size=0.32 text-anchor=middle>S=%.3g %s</text></svg>",
                    1 - prob[i].item<double>(), instances[i]["geometry"].get<std::string>().c_str());
      svg += cap;
    }
    rep.add_html(svg + "</div>");
  }
  rep.write(join_path(run_dir, "report.html"));
  return summary;
}

json run_superposition(const SuperpositionConfig& cfg, const std::string& run_dir, bool resume) {
  cfg.validate("superposition");
  SuperpositionTask task(cfg);
  train(task, cfg.trainer_config(), run_dir, resume);
  return analyze_superposition(run_dir);
}

}  // namespace mechlens
