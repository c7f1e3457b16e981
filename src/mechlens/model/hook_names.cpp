#include "mechlens/model/hook_names.h"

#include <cctype>
#include <set>

#include "mechlens/core/error.h"

namespace mechlens {

std::string act_name(const std::string& name_in, int layer, const std::string& layer_type_in) {
  std::string name = name_in, layer_type = layer_type_in;
  if ((name.find('.') != std::string::npos || name.rfind("hook_", 0) == 0) && layer < 0 && layer_type.empty())
    return name;
  // TL's short form: letters, a layer number, an optional layer type ("k6a", "resid_pre3").
  if (layer < 0 && layer_type.empty()) {
    size_t i = 0;
    while (i < name.size() && (std::islower(static_cast<unsigned char>(name[i])) || name[i] == '_')) ++i;
    size_t j = i;
    while (j < name.size() && std::isdigit(static_cast<unsigned char>(name[j]))) ++j;
    if (i > 0 && j > i) {
      layer = std::stoi(name.substr(i, j - i));
      layer_type = name.substr(j);
      name = name.substr(0, i);
    }
  }
  if (name.empty()) throw Error("empty hook name");
  if (name == "attn") name = "pattern";
  else if (name == "attn_logits") name = "attn_scores";
  else if (name == "key") name = "k";
  else if (name == "query") name = "q";
  else if (name == "value") name = "v";
  else if (name == "mlp_pre") name = "pre";
  else if (name == "mlp_mid") name = "mid";
  else if (name == "mlp_post") name = "post";
  static const std::set<std::string> attn = {"k", "v", "q", "z", "rot_k", "rot_q", "result", "pattern", "attn_scores"};
  static const std::set<std::string> mlp = {"pre", "post", "mid", "pre_linear"};
  if (attn.count(name)) layer_type = "attn";
  else if (mlp.count(name)) layer_type = "mlp";
  else if (layer_type == "a" || layer_type == "attention") layer_type = "attn";
  else if (layer_type == "m") layer_type = "mlp";
  else if (layer_type == "b" || layer_type == "block" || layer_type == "blocks") layer_type.clear();
  std::string full;
  if (layer >= 0) full += "blocks." + std::to_string(layer) + ".";
  if (!layer_type.empty()) full += layer_type + ".";
  full += "hook_" + name;
  if ((name == "scale" || name == "normalized") && layer < 0 && layer_type.empty()) full = "ln_final." + full;
  return full;
}

std::vector<std::string> act_names(const std::string& name, int n_layers, const std::string& layer_type) {
  std::vector<std::string> out;
  out.reserve(n_layers > 0 ? n_layers : 0);
  for (int l = 0; l < n_layers; ++l) out.push_back(act_name(name, l, layer_type));
  return out;
}

std::string param_name(const std::string& name, int layer, const std::string& layer_type) {
  if (layer < 0) {
    if (name == "W_E") return "embed.W_E";
    if (name == "W_pos") return "pos_embed.W_pos";
    if (name == "W_U" || name == "b_U") return "unembed." + name;
    if (!layer_type.empty()) return layer_type + "." + name;
    throw Error("weight " + name + " needs a layer");
  }
  std::string type = layer_type;
  if (type.empty()) {
    static const std::set<std::string> attn = {"W_Q", "W_K", "W_V", "W_O", "b_Q", "b_K", "b_V", "b_O",
                                               "W_qkv", "b_qkv", "_W_K", "_W_V", "_b_K", "_b_V"};
    static const std::set<std::string> mlp = {"W_in", "W_out", "W_gate", "b_in", "b_out"};
    if (attn.count(name)) type = "attn";
    else if (mlp.count(name)) type = "mlp";
    else throw Error("weight " + name + " needs a layer type (attn, mlp, ln1, ln2)");
  }
  return "blocks." + std::to_string(layer) + "." + type + "." + name;
}

}  // namespace mechlens
