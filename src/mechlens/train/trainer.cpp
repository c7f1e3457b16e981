#include "mechlens/train/trainer.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>

#include "mechlens/core/error.h"
#include "mechlens/core/io.h"
#include "mechlens/loading/safetensors.h"
#include "mechlens/train/metrics_store.h"
#include "mechlens/train/progress.h"

namespace mechlens {

namespace fs = std::filesystem;

void TrainerConfig::validate(const std::string& where) const {
  optim.validate(where);
  LrSchedule{schedule, optim.lr, warmup_steps, min_lr_frac, std::max<int64_t>(1, steps)}.validate(where);
  if (steps < 1) fail(where, "the number of steps must be >= 1");
  if (!(grad_clip >= 0)) fail(where, "gradient clipping norm must be >= 0");
  if (checkpoint_schedule != "linear" && checkpoint_schedule != "log")
    fail(where, "checkpoint schedule must be linear or log, not " + checkpoint_schedule);
  if (checkpoints < 2) fail(where, "need at least 2 checkpoints (the first and the last)");
  if (eval_every < 0 || log_every < 0 || save_every < 0) fail(where, "periods must be >= 0");
}

bool holds_run(const std::string& run_dir) {
  return file_exists(join_path(run_dir, "config.json")) || file_exists(join_path(run_dir, "state.safetensors"));
}

void start_run(const std::string& run_dir, const nlohmann::json& config) {
  if (run_dir.empty()) throw Error("start_run needs a run folder (run_dir is empty)");
  if (holds_run(run_dir))
    fail(run_dir, "already holds a run; continue it (resume_run, then train with resume) or choose another run_dir");
  std::error_code ec;
  fs::create_directories(run_dir, ec);
  if (ec) fail(run_dir, "cannot create the run folder: " + ec.message());
  write_file_atomic(join_path(run_dir, "config.json"), config.dump(2) + "\n");
}

nlohmann::json resume_run(const std::string& run_dir) {
  if (!dir_exists(run_dir)) fail(run_dir, "no such run folder");
  return read_json_file(join_path(run_dir, "config.json"));
}

std::string checkpoint_dir(const std::string& run_dir, int64_t step) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "step_%09lld", static_cast<long long>(step));
  return join_path(join_path(run_dir, "checkpoints"), buf);
}

std::vector<int64_t> list_checkpoints(const std::string& run_dir) {
  std::vector<int64_t> out;
  fs::path d = fs::path(run_dir) / "checkpoints";
  std::error_code ec;
  if (!fs::is_directory(d, ec)) return out;
  for (auto& e : fs::directory_iterator(d, ec)) {
    const std::string n = e.path().filename().string();
    if (n.rfind("step_", 0) != 0 || !e.is_directory()) continue;
    const std::string digits = n.substr(5);
    if (digits.empty() || digits.find_first_not_of("0123456789") != std::string::npos) continue;
    if (!file_exists((e.path() / "mechlens.json").string())) continue;  // not finished
    out.push_back(std::stoll(digits));
  }
  std::sort(out.begin(), out.end());
  return out;
}

namespace {

const char* kStateFormat = "mechlens-train-state-1";

void save_state(const std::string& path, int64_t next_step, bool complete, TrainTask& task, const Optimizer& opt) {
  std::vector<std::pair<std::string, at::Tensor>> ts;
  for (auto& [n, t] : task.parameters()) ts.emplace_back("param." + n, t.detach());
  for (auto& [n, t] : opt.state()) ts.emplace_back("opt." + n, t);
  save_safetensors(path, ts, {{"format", kStateFormat}, {"next_step", std::to_string(next_step)}, {"complete", complete ? "1" : "0"}});
}

int64_t load_state(const std::string& path, TrainTask& task, Optimizer& opt, bool& complete) {
  auto f = SafetensorsFile::open(path);
  auto fmt = f->metadata().find("format");
  if (fmt == f->metadata().end() || fmt->second != kStateFormat) fail(path, "not a mechlens training state");
  auto ns = f->metadata().find("next_step");
  if (ns == f->metadata().end()) fail(path, "training state lacks next_step");
  int64_t next = -1;
  try {
    next = std::stoll(ns->second);
  } catch (const std::exception&) {
    fail(path, "training state has a bad next_step");
  }
  if (next < 0) fail(path, "training state has a negative next_step");
  auto c = f->metadata().find("complete");
  complete = c != f->metadata().end() && c->second == "1";
  // Check everything before changing anything.
  auto params = task.parameters();
  for (auto& [n, t] : params) {
    if (!f->contains("param." + n)) fail(path, "training state lacks parameter " + n);
    if (f->entry("param." + n).shape != t.sizes().vec()) fail(path, "parameter " + n + " has the wrong shape");
  }
  StateDict os;
  for (const auto& k : f->keys())
    if (k.rfind("opt.", 0) == 0) os[k.substr(4)] = f->get(k);
  {
    at::NoGradGuard ng;
    for (auto& [n, t] : params) t.copy_(f->get("param." + n, t.scalar_type()));
  }
  opt.load_state(os, path);
  return next;
}

std::string fmt_metric(const Metrics& m, const char* name) {
  auto it = m.find(name);
  if (it == m.end()) return "";
  char buf[64];
  std::snprintf(buf, sizeof buf, " %s %.4g", name, it->second);
  return buf;
}

}  // namespace

TrainResult train(TrainTask& task, const TrainerConfig& cfg, const std::string& run_dir, bool resume) {
  cfg.validate(run_dir);
  std::error_code ec;
  fs::create_directories(fs::path(run_dir) / "checkpoints", ec);
  if (ec) fail(run_dir, "cannot create the run folder: " + ec.message());
  const std::string state_path = join_path(run_dir, "state.safetensors");

  NamedTensors trainable;
  for (auto& [n, t] : task.parameters())
    if (t.requires_grad()) trainable.emplace_back(n, t);
  if (trainable.empty()) fail(run_dir, "the model has no trainable parameters");
  Optimizer opt(cfg.optim, trainable);
  LrSchedule lr{cfg.schedule, cfg.optim.lr, cfg.warmup_steps, cfg.min_lr_frac, cfg.steps};

  MetricsStore store(join_path(run_dir, "metrics.sqlite"));
  TrainResult res;
  bool complete = false;
  if (resume && file_exists(state_path)) {
    res.start_step = load_state(state_path, task, opt, complete);
    if (res.start_step > cfg.steps) fail(state_path, "the saved run is past the configured number of steps");
    store.truncate_after(res.start_step - 1);
  } else {
    if (resume) std::fprintf(stderr, "%s: no training state yet; starting from step 0\n", run_dir.c_str());
    store.truncate_after(-1);
  }
  const auto ckpts = checkpoint_steps(cfg.checkpoint_schedule, cfg.checkpoints, cfg.steps);
  auto is_ckpt = [&](int64_t s) { return std::binary_search(ckpts.begin(), ckpts.end(), s); };
  if (res.start_step == 0 && is_ckpt(0)) task.save_checkpoint(checkpoint_dir(run_dir, 0));

  Progress bar(cfg.label, cfg.steps, res.start_step, cfg.log_every);
  auto t0 = std::chrono::steady_clock::now(), last_save = t0;
  Metrics last_eval;
  int64_t step = res.start_step;
  std::string status;
  for (; step < cfg.steps && !complete; ++step) {
    Metrics m;
    bool stop = false;
    if (cfg.eval_every > 0 && step % cfg.eval_every == 0) {
      at::NoGradGuard ng;
      task.evaluate(step, m);
      last_eval = m;
      stop = task.should_stop(m);
    }
    at::Tensor loss = task.loss(step, m);
    const double lv = loss.item<double>();
    if (!std::isfinite(lv)) fail(run_dir, "the loss is not finite at step " + std::to_string(step));
    m["train_loss"] = lv;
    m["lr"] = lr.at(step);
    loss.backward();
    if (cfg.grad_clip > 0) m["grad_norm"] = opt.clip_grad_norm(cfg.grad_clip);
    opt.step(lr.at(step));
    opt.zero_grad();
    for (auto& [n, v] : m) store.add(step, n, v);
    const int64_t done = step + 1;
    if (is_ckpt(done) && done != cfg.steps) task.save_checkpoint(checkpoint_dir(run_dir, done));
    status = fmt_metric(m, "train_loss") + fmt_metric(last_eval, "test_loss");
    bar.update(done, status);
    auto now = std::chrono::steady_clock::now();
    const bool due = cfg.save_every > 0 ? done % cfg.save_every == 0
                                        : std::chrono::duration<double>(now - last_save).count() >= cfg.save_every_s;
    if (stop) {
      res.stopped_early = true;
      ++step;
      break;
    }
    if (due && done < cfg.steps) {
      store.flush();
      save_state(state_path, done, false, task, opt);
      last_save = now;
    }
  }
  res.steps_run = step;
  res.wall_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  // The final weights: evaluated, checkpointed, and the state marks the run complete.
  Metrics fin;
  {
    at::NoGradGuard ng;
    task.evaluate(res.steps_run, fin);
  }
  for (auto& [n, v] : fin) store.add(res.steps_run, n, v);
  store.flush();
  task.save_checkpoint(checkpoint_dir(run_dir, res.steps_run));
  save_state(state_path, res.steps_run, true, task, opt);
  store.set_meta("steps_run", std::to_string(res.steps_run));
  store.export_jsonl(join_path(run_dir, "metrics.jsonl"));
  bar.finish(status);
  res.checkpoint_steps = list_checkpoints(run_dir);
  return res;
}

}  // namespace mechlens
