#include "mechlens/explore/explorer.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <cctype>
#include <climits>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <dirent.h>
#include <optional>
#include <stdexcept>

#include "mechlens/analysis/head_detect.h"
#include "mechlens/analysis/logit_lens.h"
#include "mechlens/core/error.h"
#include "mechlens/core/io.h"
#include "mechlens/explore/web_assets.h"
#include "mechlens/loading/load_model.h"
#include "mechlens/model/hook_names.h"
#include "mechlens/model/hooked_transformer.h"
#include "mechlens/scope/index_build.h"
#include "mechlens/scope/neuron_index.h"
#include "mechlens/tokenize/tokenizer.h"
#include "mechlens/train/metrics_store.h"
#include "mechlens/train/trainer.h"

namespace mechlens {

using nlohmann::json;

namespace {

// A request the client got wrong: its status and a message naming the problem.
struct ApiError : std::runtime_error {
  int status;
  ApiError(int s, const std::string& m) : std::runtime_error(m), status(s) {}
};

std::string real_path(const std::string& p) {
  char buf[PATH_MAX];
  return ::realpath(p.c_str(), buf) ? std::string(buf) : p;
}

std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

json finite_or_null(double v) { return std::isfinite(v) ? json(v) : json(nullptr); }

// A non-negative integer written in plain digits (path segments).
int64_t parse_index(const std::string& s, const std::string& what) {
  if (s.empty() || s.size() > 12 || !std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isdigit(c); }))
    throw ApiError(400, what + " must be a non-negative integer, got \"" + s + "\"");
  return std::stoll(s);
}

int64_t int_field(const json& body, const std::string& key, bool required, int64_t dflt = 0) {
  auto it = body.find(key);
  if (it == body.end() || it->is_null()) {
    if (required) throw ApiError(400, "missing field \"" + key + "\"");
    return dflt;
  }
  if (!it->is_number_integer()) throw ApiError(400, "field \"" + key + "\" must be an integer");
  return it->get<int64_t>();
}

// Recipes whose checkpoints are HookedTransformers.
bool transformer_recipe(const std::string& r) {
  return r == "grokking" || r == "induction" || r == "addition" || r == "lm";
}

// The largest attention reply: layers x heads x pos^2 numbers (about 40 MB of JSON).
constexpr int64_t kMaxPatternCells = 4 << 20;

bool safe_name(const std::string& s) {
  return !s.empty() && s[0] != '.' &&
         std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isalnum(c) || c == '-' || c == '_' || c == '.'; });
}

json series_json(const std::map<std::string, std::vector<std::pair<int64_t, double>>>& s) {
  json out = json::object();
  for (const auto& [name, pts] : s) {
    json a = json::array();
    for (const auto& [step, v] : pts) a.push_back({step, finite_or_null(v)});
    out[name] = a;
  }
  return out;
}

}  // namespace

struct Explorer::Entry {
  std::string id, label, dir, run;
  int64_t step = -1;
  std::unique_ptr<NeuronIndex> index;
  std::mutex mu;  // serialises use of the model: hooks are state on it
  std::unique_ptr<HookedTransformer> model;
  std::unique_ptr<Tokenizer> tok;
  std::optional<json> induction_random;

  // Model and tokenizer, both or neither; throws Error naming the folder.
  void load() {
    auto m = load_model(dir);
    tok = model_tokenizer(dir, m->cfg().d_vocab);
    model = std::move(m);
  }
  void ensure_loaded() {  // under mu; a checkpoint that fails to load is the request's problem
    if (model) return;
    try {
      load();
    } catch (const Error& e) {
      throw ApiError(422, std::string("cannot load model ") + id + ": " + e.what());
    }
  }
  std::vector<std::string> str_tokens(const std::vector<int64_t>& ids) const {
    if (tok) return tok->to_str_tokens(ids);
    std::vector<std::string> out;
    for (int64_t i : ids) out.push_back("<" + std::to_string(i) + ">");
    return out;
  }
};

Explorer::Explorer(const ExplorerOptions& opts) : opts_(opts) {
  if (!opts_.index_path.empty() && opts_.model_dir.empty()) {
    // The index names the model it was built from.
    NeuronIndex probe(opts_.index_path);
    opts_.model_dir = probe.build().value("model_dir", "");
    if (opts_.model_dir.empty()) fail(opts_.index_path, "does not name its model folder; set model_dir");
  }
  if (!opts_.model_dir.empty()) {
    auto e = std::make_unique<Entry>();
    e->id = "model";
    e->label = opts_.model_dir;
    e->dir = opts_.model_dir;
    e->load();  // errors name the folder (exit 2 at startup)
    if (!opts_.index_path.empty()) {
      e->index = std::make_unique<NeuronIndex>(opts_.index_path);
      if (e->index->build().value("fingerprint", "") != model_fingerprint(*e->model))
        fail(opts_.index_path, "was built from another model than " + e->dir + " (weights differ)");
    }
    entries_.push_back(std::move(e));
  }
  if (!opts_.runs_dir.empty()) {
    if (!dir_exists(opts_.runs_dir)) fail(opts_.runs_dir, "no such folder");
    std::vector<std::string> names;
    if (DIR* d = opendir(opts_.runs_dir.c_str())) {
      while (dirent* ent = readdir(d)) {
        std::string n = ent->d_name;
        if (safe_name(n) && file_exists(join_path(join_path(opts_.runs_dir, n), "config.json"))) names.push_back(n);
      }
      closedir(d);
    }
    std::sort(names.begin(), names.end());
    for (const auto& n : names) {
      Run r;
      r.id = n, r.dir = join_path(opts_.runs_dir, n);
      try {
        r.recipe = read_json_file(join_path(r.dir, "config.json")).value("recipe", "");
        r.steps = list_checkpoints(r.dir);
      } catch (const Error&) {
        continue;  // not a run folder
      }
      if (transformer_recipe(r.recipe)) {
        std::unique_ptr<NeuronIndex> index;
        const std::string ip = join_path(r.dir, "index.db");
        if (file_exists(ip)) index = std::make_unique<NeuronIndex>(ip);
        for (int64_t s : r.steps) {
          auto e = std::make_unique<Entry>();
          e->id = n + "@" + std::to_string(s);
          e->label = n + " (step " + std::to_string(s) + ")";
          e->dir = checkpoint_dir(r.dir, s);
          e->run = n, e->step = s;
          if (index && real_path(index->build().value("model_dir", "")) == real_path(e->dir)) {
            // The same folder, but the same weights? (A retrained run leaves a stale index.)
            e->load();  // kept: the first request on it needs no second load
            if (index->build().value("fingerprint", "") == model_fingerprint(*e->model)) e->index = std::move(index);
            else std::fprintf(stderr, "explore: %s was built from other weights than %s; not shown\n", ip.c_str(), e->dir.c_str());
          }
          entries_.push_back(std::move(e));
        }
      }
      runs_.push_back(std::move(r));
    }
  }
  // The default model: the given one, else the latest checkpoint with an index, else the latest.
  auto pick = std::find_if(entries_.begin(), entries_.end(), [](auto& e) { return e->run.empty(); });
  if (pick == entries_.end()) pick = std::find_if(entries_.begin(), entries_.end(), [](auto& e) { return e->index != nullptr; });
  if (pick == entries_.end() && !entries_.empty()) pick = entries_.end() - 1;
  if (pick != entries_.end() && pick != entries_.begin()) std::rotate(entries_.begin(), pick, pick + 1);
  for (auto& e : entries_) by_id_[e->id] = e.get();
}

Explorer::~Explorer() = default;

std::vector<std::string> Explorer::model_ids() const {
  std::vector<std::string> out;
  for (const auto& e : entries_) out.push_back(e->id);
  return out;
}

Explorer::Entry& Explorer::entry(const std::string& id) {
  if (entries_.empty()) throw ApiError(404, "no model is loaded (the explorer was started with no model_dir or runs_dir)");
  if (id.empty()) return *entries_.front();
  auto it = by_id_.find(id);
  if (it == by_id_.end()) throw ApiError(404, "unknown model \"" + id + "\"");
  return *it->second;
}

HttpReply Explorer::handle(const HttpRequest& req) {
  try {
    // Path tricks: encoded separators or dots, dot segments, backslashes, NUL.
    std::string raw = req.target.substr(0, req.target.find('?'));
    std::string lower = raw;
    std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return std::tolower(c); });
    if (lower.find("%2f") != std::string::npos || lower.find("%5c") != std::string::npos ||
        lower.find("%2e") != std::string::npos || lower.find("%00") != std::string::npos ||
        req.path.find('\\') != std::string::npos || req.path.find('\0') != std::string::npos)
      throw ApiError(400, "encoded separators, dots or NUL are not allowed in the path");
    std::vector<std::string> parts;
    for (size_t at = 0; at <= req.path.size();) {
      size_t next = req.path.find('/', at);
      if (next == std::string::npos) next = req.path.size();
      std::string seg = req.path.substr(at, next - at);
      if (seg == ".." || seg == ".") throw ApiError(400, "dot segments are not allowed in the path");
      if (!seg.empty()) parts.push_back(seg);
      at = next + 1;
    }
    if (!parts.empty() && parts[0] == "api") {
      return {200, "application/json", dump(api(req, parts))};
    }
    if (req.method != "GET" && req.method != "HEAD") throw ApiError(405, "pages are read with GET");
    const std::string name = parts.empty() ? "index.html" : (parts.size() == 1 ? parts[0] : "");
    const WebAsset* a = name.empty() ? nullptr : find_web_asset(name);
    if (!a) throw ApiError(404, "no page " + req.path);
    return {200, a->content_type, std::string(a->begin, a->end)};
  } catch (const ApiError& e) {
    return {e.status, "application/json", dump({{"error", e.what()}})};
  } catch (const Error& e) {
    return {400, "application/json", dump({{"error", e.what()}})};
  } catch (const std::exception& e) {
    return {500, "application/json", dump({{"error", std::string("internal error: ") + e.what()}})};
  }
}

json Explorer::api(const HttpRequest& req, const std::vector<std::string>& p) {
  const size_t n = p.size();
  auto want = [&](const char* method) {
    if (req.method != method) throw ApiError(405, req.path + " takes " + method);
  };
  json body = json::object();
  if (req.method == "POST") {
    if (req.body.size() > opts_.max_body)
      throw ApiError(413, "request body is " + std::to_string(req.body.size()) + " bytes; the limit is " + std::to_string(opts_.max_body));
    try {
      body = json::parse(req.body);
    } catch (const json::exception& e) {
      throw ApiError(400, std::string("malformed JSON body: ") + e.what());
    }
    if (!body.is_object()) throw ApiError(400, "the JSON body must be an object");
  }
  std::string model_id;
  if (auto q = req.query.find("model"); q != req.query.end()) model_id = q->second;
  if (body.contains("model")) {
    if (!body["model"].is_string()) throw ApiError(400, "field \"model\" must be a string");
    model_id = body["model"].get<std::string>();
  }
  if (n == 2 && p[1] == "models") return want("GET"), models_json();
  if (n == 2 && p[1] == "model") return want("GET"), model_json(entry(model_id));
  if (n == 4 && p[1] == "neuron") return want("GET"), neuron(entry(model_id), p[2], p[3]);
  if (n == 2 && p[1] == "probe") return want("POST"), probe(entry(model_id), body);
  if (n == 2 && p[1] == "attention") return want("POST"), attention(entry(model_id), body);
  if (n == 2 && p[1] == "lens") return want("POST"), lens(entry(model_id), body);
  if (n == 2 && p[1] == "runs") return want("GET"), runs_json();
  if (n == 3 && p[1] == "runs") return want("GET"), run_json(p[2]);
  throw ApiError(404, "unknown API route " + req.path);
}

json Explorer::models_json() {
  json out = json::array();
  for (const auto& e : entries_)
    out.push_back({{"id", e->id}, {"label", e->label}, {"run", e->run}, {"step", e->step}, {"has_index", e->index != nullptr}});
  return out;
}

json Explorer::model_json(Entry& e) {
  std::lock_guard<std::mutex> lock(e.mu);
  e.ensure_loaded();
  const ModelConfig& c = e.model->cfg();
  json j = c.to_json();
  int64_t params = 0;
  for (const auto& [name, t] : e.model->parameters()) params += t.numel();
  j.update({{"id", e.id}, {"label", e.label}, {"run", e.run}, {"step", e.step}, {"hook_names", e.model->hook_names()},
            {"n_params", params}, {"processing", e.model->processing()}, {"has_tokenizer", e.tok != nullptr},
            {"has_index", e.index != nullptr}});
  if (e.index) {
    json b = e.index->build();
    b.erase("config");
    j["index"] = b;
  }
  return j;
}

json Explorer::neuron(Entry& e, const std::string& layer, const std::string& index) {
  const int64_t l = parse_index(layer, "layer"), i = parse_index(index, "neuron");
  if (!e.index) throw ApiError(404, "model \"" + e.id + "\" has no neuron index (build one with mechlens scope build)");
  if (l >= e.index->n_layers()) throw ApiError(404, "layer " + layer + " out of range [0, " + std::to_string(e.index->n_layers()) + ")");
  if (i >= e.index->n_neurons()) throw ApiError(404, "neuron " + index + " out of range [0, " + std::to_string(e.index->n_neurons()) + ")");
  return neuron_json(e.index->neuron(l, i), *e.index);
}

namespace {

// The prompt of a request: `text` (tokenized with BOS first, as TransformerLens does)
// or `tokens` (ids, used as given). Checked against the limits and the vocabulary.
at::Tensor prompt_of(const Explorer::Entry& e, const json& body, const ExplorerOptions& o) {
  const bool has_text = body.contains("text"), has_tokens = body.contains("tokens");
  if (has_text == has_tokens) throw ApiError(400, "give exactly one of \"text\" or \"tokens\"");
  std::vector<int64_t> ids;
  const ModelConfig& c = e.model->cfg();
  if (has_text) {
    if (!body["text"].is_string()) throw ApiError(400, "field \"text\" must be a string");
    const std::string t = body["text"].get<std::string>();
    if (t.size() > o.max_text)
      throw ApiError(413, "text is " + std::to_string(t.size()) + " bytes; the limit is " + std::to_string(o.max_text));
    if (!e.tok) throw ApiError(400, "model \"" + e.id + "\" has no tokenizer: send \"tokens\"");
    ids = e.tok->encode(t, e.tok->bos_id >= 0);
  } else {
    const json& a = body["tokens"];
    if (!a.is_array()) throw ApiError(400, "field \"tokens\" must be an array of token ids");
    if (a.size() > static_cast<size_t>(o.max_tokens) + 1000) throw ApiError(413, "too many tokens");
    for (const auto& v : a) {
      if (!v.is_number_integer()) throw ApiError(400, "\"tokens\" must hold integers");
      const int64_t id = v.get<int64_t>();
      if (id < 0 || id >= c.d_vocab)
        throw ApiError(400, "token id " + std::to_string(id) + " out of range [0, " + std::to_string(c.d_vocab) + ")");
      ids.push_back(id);
    }
  }
  if (ids.empty()) throw ApiError(400, "the prompt is empty");
  const int64_t limit = std::min<int64_t>(o.max_tokens, c.n_ctx);
  if (static_cast<int64_t>(ids.size()) > limit)
    throw ApiError(413, "the prompt is " + std::to_string(ids.size()) + " tokens; the limit is " + std::to_string(limit));
  return at::tensor(ids, at::kLong).view({1, static_cast<int64_t>(ids.size())});
}

std::vector<int64_t> ids_of(const at::Tensor& t) {
  at::Tensor c = t.reshape(-1).contiguous();
  return std::vector<int64_t>(c.data_ptr<int64_t>(), c.data_ptr<int64_t>() + c.numel());
}

json grid_json(const at::Tensor& t) {  // [L, H]
  at::Tensor c = t.to(at::kDouble).contiguous();
  json out = json::array();
  for (int64_t i = 0; i < c.size(0); ++i) {
    json row = json::array();
    for (int64_t j = 0; j < c.size(1); ++j) row.push_back(finite_or_null(c[i][j].item<double>()));
    out.push_back(row);
  }
  return out;
}

}  // namespace

json Explorer::probe(Entry& e, const json& body) {
  std::lock_guard<std::mutex> lock(e.mu);
  e.ensure_loaded();
  const ModelConfig& c = e.model->cfg();
  at::Tensor tokens = prompt_of(e, body, opts_);
  const int64_t layer = int_field(body, "layer", true);
  if (layer < 0 || layer >= c.n_layers)
    throw ApiError(400, "layer " + std::to_string(layer) + " out of range [0, " + std::to_string(c.n_layers) + ")");
  if (c.attn_only) throw ApiError(400, "model \"" + e.id + "\" is attention-only: it has no MLP neurons");
  const bool has_neuron = body.contains("neuron") && !body["neuron"].is_null();
  const bool has_pos = body.contains("position") && !body["position"].is_null();
  if (!has_neuron && !has_pos) throw ApiError(400, "give \"neuron\", \"position\" or both");
  const int64_t neuron = int_field(body, "neuron", false, 0);
  if (has_neuron && (neuron < 0 || neuron >= c.d_mlp))
    throw ApiError(400, "neuron " + std::to_string(neuron) + " out of range [0, " + std::to_string(c.d_mlp) + ")");
  const int64_t P = tokens.size(1);
  int64_t pos = int_field(body, "position", false, 0);
  if (has_pos) {
    if (pos < -P || pos >= P) throw ApiError(400, "position " + std::to_string(pos) + " out of range [-" + std::to_string(P) + ", " + std::to_string(P) + ")");
    if (pos < 0) pos += P;
  }
  const int64_t top = std::clamp<int64_t>(int_field(body, "top", false, 20), 1, c.d_mlp);
  at::NoGradGuard no_grad;
  at::Tensor acts;
  const std::string hook = neuron_hook_name(c, static_cast<int>(layer));
  ForwardOptions fo;
  fo.stop_at_layer = static_cast<int>(layer) + 1;
  e.model->run_with_hooks(tokens, {{names_in({hook}), [&acts](const at::Tensor& a, const HookPoint&) {
                                      acts = a.detach().to(at::kFloat)[0];  // [pos, d_mlp]
                                      return a;
                                    }}},
                          {}, fo);
  const auto ids = ids_of(tokens);
  json j = {{"model", e.id}, {"layer", layer}, {"hook", hook}, {"tokens", e.str_tokens(ids)}, {"ids", ids}};
  if (has_neuron) {
    at::Tensor col = acts.select(1, neuron).contiguous();
    j["neuron"] = neuron;
    j["acts"] = std::vector<float>(col.data_ptr<float>(), col.data_ptr<float>() + col.numel());
  }
  if (has_pos) {
    auto [v, i] = acts[pos].topk(top);
    json tn = json::array();
    for (int64_t r = 0; r < top; ++r) tn.push_back({{"neuron", i[r].item<int64_t>()}, {"act", v[r].item<double>()}});
    j["position"] = pos;
    j["top_neurons"] = tn;
  }
  return j;
}

json Explorer::attention(Entry& e, const json& body) {
  std::lock_guard<std::mutex> lock(e.mu);
  e.ensure_loaded();
  const ModelConfig& c = e.model->cfg();
  at::Tensor tokens = prompt_of(e, body, opts_);
  const int64_t P = tokens.size(1), cells = static_cast<int64_t>(c.n_layers) * c.n_heads * P * P;
  if (cells > kMaxPatternCells)
    throw ApiError(413, "the patterns of " + std::to_string(P) + " tokens are " + std::to_string(cells) +
                            " numbers; the limit is " + std::to_string(kMaxPatternCells) + " (send a shorter prompt)");
  at::NoGradGuard no_grad;
  const std::vector<std::string> pattern_names = act_names("pattern", c.n_layers);
  auto [logits, cache] = e.model->run_with_cache(tokens, names_in(pattern_names));
  json patterns = json::array();
  for (int l = 0; l < c.n_layers; ++l) {
    at::Tensor p = cache.at(pattern_names[l])[0].to(at::kFloat).contiguous();  // [H, q, k]
    auto a = p.accessor<float, 3>();
    json heads = json::array();
    for (int64_t h = 0; h < p.size(0); ++h) {
      json rows = json::array();
      for (int64_t q = 0; q < p.size(1); ++q) {
        std::vector<float> row(p.size(2));
        for (int64_t k = 0; k < p.size(2); ++k) row[k] = a[h][q][k];
        rows.push_back(row);
      }
      heads.push_back(rows);
    }
    patterns.push_back(heads);
  }
  at::Tensor seq = tokens[0];
  json scores = {{"previous_token", grid_json(detect_head(*e.model, seq, previous_token_pattern(seq)))},
                 {"duplicate_token", grid_json(detect_head(*e.model, seq, duplicate_token_pattern(seq)))},
                 {"induction", grid_json(detect_head(*e.model, seq, induction_pattern(seq)))}};
  if (!e.induction_random) {
    const int64_t half = std::min<int64_t>(50, (c.n_ctx - 1) / 2);
    const int64_t bos = e.tok && e.tok->bos_id >= 0 ? e.tok->bos_id : 0;
    e.induction_random = grid_json(induction_scores(*e.model, repeated_random_tokens(*e.model, half, 0, bos)));
  }
  scores["induction_random"] = *e.induction_random;
  const auto ids = ids_of(tokens);
  return {{"model", e.id}, {"tokens", e.str_tokens(ids)}, {"ids", ids}, {"patterns", patterns}, {"head_scores", scores},
          {"definitions",
           {{"previous_token", "share of each head's attention on the previous token (this prompt)"},
            {"duplicate_token", "share on earlier copies of the current token (this prompt)"},
            {"induction", "share on the token after an earlier copy of the current token (this prompt)"},
            {"induction_random", "the same on a BOS + random tokens repeated twice (the model's induction score)"}}}};
}

json Explorer::lens(Entry& e, const json& body) {
  std::lock_guard<std::mutex> lock(e.mu);
  e.ensure_loaded();
  at::Tensor tokens = prompt_of(e, body, opts_);
  const int64_t k = int_field(body, "top_k", false, 5);
  if (k < 1 || k > 50) throw ApiError(400, "top_k must lie in [1, 50]");
  LogitLensTop t = logit_lens_top(*e.model, tokens, k);
  at::Tensor ids = t.ids.select(1, 0).contiguous(), lps = t.log_probs.select(1, 0).contiguous();  // [C, P, k]
  auto ia = ids.accessor<int64_t, 3>();
  auto la = lps.accessor<float, 3>();
  json top = json::array();
  for (int64_t c = 0; c < ids.size(0); ++c) {
    json per_pos = json::array();
    for (int64_t p = 0; p < ids.size(1); ++p) {
      json list = json::array();
      for (int64_t r = 0; r < ids.size(2); ++r) {  // k, or the vocabulary when smaller
        const int64_t id = ia[c][p][r];
        list.push_back({{"id", id}, {"token", e.str_tokens({id})[0]}, {"logprob", la[c][p][r]}});
      }
      per_pos.push_back(list);
    }
    top.push_back(per_pos);
  }
  const auto tid = ids_of(tokens);
  return {{"model", e.id}, {"tokens", e.str_tokens(tid)}, {"ids", tid}, {"labels", t.labels}, {"top", top},
          {"note", "each layer's residual stream through the final norm (its own scale) and the unembedding"}};
}

json Explorer::runs_json() {
  json out = json::array();
  for (const auto& r : runs_) {
    json j = {{"id", r.id}, {"recipe", r.recipe}, {"checkpoints", r.steps}};
    const std::string sp = join_path(r.dir, "summary.json");
    if (file_exists(sp)) {
      try {
        j["summary"] = read_json_file(sp);
      } catch (const Error&) {
        j["summary"] = nullptr;
      }
    }
    out.push_back(j);
  }
  return out;
}

json Explorer::run_json(const std::string& id) {
  auto it = std::find_if(runs_.begin(), runs_.end(), [&](const Run& r) { return r.id == id; });
  if (it == runs_.end()) throw ApiError(404, "unknown run \"" + id + "\"");
  const Run& r = *it;
  json j = {{"id", r.id}, {"recipe", r.recipe}};
  j["config"] = read_json_file(join_path(r.dir, "config.json"));
  const std::string sp = join_path(r.dir, "summary.json");
  j["summary"] = file_exists(sp) ? read_json_file(sp) : json(nullptr);
  json cks = json::array();
  for (int64_t s : r.steps) {
    const std::string mid = r.id + "@" + std::to_string(s);
    cks.push_back({{"step", s}, {"model", by_id_.count(mid) ? json(mid) : json(nullptr)}});
  }
  j["checkpoints"] = cks;
  const std::string mp = join_path(r.dir, "metrics.sqlite");
  if (file_exists(mp)) {
    MetricsStore store(mp, true);
    j["metrics"] = series_json(store.series());
    j["analysis"] = series_json(store.analysis_series());
  } else {
    j["metrics"] = json::object();
    j["analysis"] = json::object();
  }
  j["has_report"] = file_exists(join_path(r.dir, "report.html"));
  return j;
}

}  // namespace mechlens
