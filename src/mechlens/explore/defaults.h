// What `make run` serves: the training lab's default toy language models, trained on
// first use from the embedded corpus and cached with their neuron indexes under
// $MECHLENS_HOME (default ~/.cache/mechlens); or a user's own model, indexed once on
// the embedded corpus. Killed half-way, the next call resumes where it stopped.
#pragma once
#include <string>
#include <vector>

#include "mechlens/train/tasks/lm.h"

namespace mechlens {

// $MECHLENS_HOME, else $HOME/.cache/mechlens.
std::string mechlens_home();

struct DefaultRun {
  std::string name;  // run folder under HOME/runs
  LmConfig config;
};
// The 1-layer GELU model of `train lm`'s defaults and a 2-layer attention-only model
// trained with the induction curriculum.
std::vector<DefaultRun> default_runs();

// Trains (or resumes, or skips when done) every default run under home/runs and
// indexes the final checkpoint of each model with MLP neurons (RUN/index.db, the whole
// training corpus in windows of 64 tokens). Returns home/runs.
std::string prepare_default_runs(const std::string& home);

// The neuron index of a model folder on the embedded Moby-Dick (max_tokens tokens in
// windows of 64), cached as home/indexes/<fingerprint>.db and built on first use.
std::string cached_model_index(const std::string& home, const std::string& model_dir, int64_t max_tokens);

}  // namespace mechlens
