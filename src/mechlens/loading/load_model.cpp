#include "mechlens/loading/load_model.h"

#include <sys/stat.h>

#include "mechlens/core/error.h"
#include "mechlens/core/io.h"
#include "mechlens/loading/families/family.h"
#include "mechlens/loading/tensor_store.h"

namespace mechlens {

namespace {
constexpr const char* kOwnConfig = "mechlens.json";
constexpr int kFormatVersion = 1;
}  // namespace

std::pair<ModelConfig, StateDict> load_weights(const std::string& dir) {
  if (!dir_exists(dir)) fail_not_found(dir, "model folder not found");
  const std::string own = join_path(dir, kOwnConfig);
  if (file_exists(own)) {
    json j = read_json_file(own);
    if (!j.is_object() || !j.contains("config")) fail(own, "missing \"config\" object");
    int version = json_get_or<int>(j, "format_version", 0, own);
    if (version != kFormatVersion) fail(own, "unsupported mechlens checkpoint format_version " + std::to_string(version));
    ModelConfig cfg = ModelConfig::from_json(j["config"], own);
    TensorStore ts = TensorStore::open_folder(dir);
    StateDict sd;
    for (const auto& [name, shape] : expected_parameters(cfg)) sd[name] = ts.get(name, shape);
    for (const auto& k : ts.keys())
      if (!sd.count(k)) fail(ts.where(), "weights do not match the config: unexpected tensor \"" + k + "\"");
    return {cfg, sd};
  }
  const std::string cfg_path = join_path(dir, "config.json");
  if (!file_exists(cfg_path)) fail_not_found(dir, "no config.json (Hugging Face) or mechlens.json (mechlens checkpoint)");
  json hf = read_json_file(cfg_path);
  if (!hf.is_object()) fail(cfg_path, "config is not a JSON object");
  const Family& fam = family_for(hf, cfg_path);
  ModelConfig cfg = fam.config(hf, cfg_path);
  cfg.validate(cfg_path);
  TensorStore ts = TensorStore::open_folder(dir);
  StateDict sd = fam.convert(ts, cfg);
  fill_missing_defaults(sd, cfg);
  check_state_dict(sd, cfg, ts.where());
  cfg.model_name = dir;
  return {cfg, sd};
}

std::unique_ptr<HookedTransformer> load_model(const std::string& dir, const LoadOptions& opts) {
  auto [cfg, sd] = load_weights(dir);
  std::string label = "none";
  const std::string own = join_path(dir, kOwnConfig);
  if (file_exists(own)) label = json_get_or<std::string>(read_json_file(own), "processing", "none", own);
  if (opts.processing.any()) {
    if (label != "none") fail(dir, "checkpoint is already processed (" + label + "); load it without weight processing (processing none)");
    process_weights(cfg, sd, opts.processing);
    label = opts.processing.describe();
  }
  if (!opts.dtype.empty()) cfg.dtype = opts.dtype;
  cfg.device = opts.device;
  return std::make_unique<HookedTransformer>(cfg, std::move(sd), label);
}

void save_checkpoint(const HookedTransformer& model, const std::string& dir) {
  if (!dir_exists(dir) && ::mkdir(dir.c_str(), 0755) != 0) fail(dir, "cannot create folder");
  std::vector<std::pair<std::string, at::Tensor>> tensors;
  for (const auto& [name, t] : model.state_dict()) tensors.push_back({name, t});
  json j = {{"format_version", kFormatVersion},
            {"processing", model.processing()},
            {"config", model.cfg().to_json()}};
  save_safetensors(join_path(dir, "model.safetensors"), tensors, {{"format", "mechlens"}});
  write_file_atomic(join_path(dir, kOwnConfig), j.dump(2) + "\n");
}

}  // namespace mechlens
