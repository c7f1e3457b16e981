#include "mechlens/core/error.h"
#include "mechlens/loading/families/family.h"

namespace mechlens {

const std::vector<Family>& families() {
  static const std::vector<Family> all = {gpt2_family(),  gpt_neo_family(), gpt_neox_family(), llama_family(),
                                          gptj_family(),  opt_family(),     mistral_family(),  gemma_family(),
                                          qwen2_family(), phi3_family()};
  return all;
}

const Family& family_for(const nlohmann::json& hf, const std::string& where) {
  std::string model_type = hf.contains("model_type") && hf["model_type"].is_string() ? hf["model_type"].get<std::string>() : "";
  for (const auto& f : families())
    for (const auto& t : f.model_types)
      if (t == model_type) return f;
  std::string arch;
  if (hf.contains("architectures") && hf["architectures"].is_array())
    for (const auto& a : hf["architectures"])
      if (a.is_string()) {
        arch = a.get<std::string>();
        for (const auto& f : families())
          for (const auto& fa : f.architectures)
            if (fa == arch) return f;
      }
  std::string known;
  for (const auto& f : families()) known += (known.empty() ? "" : ", ") + f.name;
  fail(where, "unknown architecture (model_type \"" + model_type + "\"" + (arch.empty() ? "" : ", " + arch) +
                  "); supported: " + known);
}

}  // namespace mechlens
