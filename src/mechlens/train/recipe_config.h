// What every recipe's config shares (AdamW's lr and weight decay, the seed, the
// checkpoint schedule, the resume-state period), written to and read from config.json
// the same way, and the per-step random generator the recipes draw their batches from.
#pragma once
#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>

#include <nlohmann/json.hpp>
#include <string>

#include "mechlens/core/io.h"
#include "mechlens/train/trainer.h"

namespace mechlens {

// C has lr, weight_decay, seed, checkpoint_schedule, checkpoints, save_every.
template <class C>
nlohmann::json with_common_json(const C& c, nlohmann::json j) {
  j["lr"] = c.lr, j["weight_decay"] = c.weight_decay, j["seed"] = c.seed;
  j["checkpoint_schedule"] = c.checkpoint_schedule, j["checkpoints"] = c.checkpoints, j["save_every"] = c.save_every;
  return j;
}

template <class C>
void read_common_json(C& c, const nlohmann::json& j, const std::string& where) {
  c.lr = json_get<double>(j, "lr", where);
  c.weight_decay = json_get<double>(j, "weight_decay", where);
  c.seed = json_get<uint64_t>(j, "seed", where);
  c.checkpoint_schedule = json_get<std::string>(j, "checkpoint_schedule", where);
  c.checkpoints = json_get<int>(j, "checkpoints", where);
  c.save_every = json_get_or<int64_t>(j, "save_every", 0, where);
}

// AdamW with the config's lr and weight decay, its checkpoint schedule and save period.
template <class C>
TrainerConfig common_trainer_config(const C& c, const std::string& label) {
  TrainerConfig t;
  t.optim.kind = "adamw", t.optim.lr = c.lr, t.optim.weight_decay = c.weight_decay;
  t.checkpoint_schedule = c.checkpoint_schedule, t.checkpoints = c.checkpoints, t.save_every = c.save_every;
  t.label = label;
  return t;
}

// The generator of the batch of update `step`: a function of (seed, step, stream) alone,
// so a resumed run draws the very same batches. `stream` keeps recipes' streams apart.
inline at::Generator step_generator(uint64_t seed, int64_t step, uint64_t stream) {
  return at::make_generator<at::CPUGeneratorImpl>(seed * 1000003ULL + static_cast<uint64_t>(step) * 7919ULL + stream);
}

}  // namespace mechlens
