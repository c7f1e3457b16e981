// The explorer's request handling, independent of the HTTP library: a registry of
// models (a model folder, and every checkpoint of the training lab's run folders,
// loaded on first use), their neuron indexes, and the JSON API plus the embedded
// pages. `mechlens explore` puts it behind cpp-httplib (http/server.h).
//
// API (every endpoint takes `model`, a query parameter or a body field; default: the
// first model):
//   GET  /api/models                         the models: id, label, run, step, has_index
//   GET  /api/model                          config fields, hook names, parameters, index
//   GET  /api/neuron/{layer}/{index}         a neuron of the index (neuron_json)
//   POST /api/probe     {text|tokens, layer, neuron?, position?}  -> {tokens, ids, acts, top_neurons}
//   POST /api/attention {text|tokens}        -> {tokens, patterns [layer][head][dest][src], head_scores}
//   POST /api/lens      {text|tokens, top_k?} -> {tokens, labels, top [component][pos][k]}
//   GET  /api/runs, GET /api/runs/{id}       run folders: config, summary, metrics, checkpoints
// Errors are {"error": "..."} with a 4xx status; the handler never throws.
#pragma once
#include <nlohmann/json.hpp>

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace mechlens {

struct HttpRequest {
  std::string method;  // GET, POST, ...
  std::string path;    // decoded
  std::string target;  // as sent (for detecting encoded path tricks)
  std::map<std::string, std::string> query;
  std::string body;
};
struct HttpReply {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
};

struct ExplorerOptions {
  std::string model_dir;   // a model folder ("" = none)
  std::string index_path;  // its neuron index ("" = none)
  std::string runs_dir;    // a folder of training-lab run folders ("" = none)
  size_t max_body = 64 * 1024;   // bytes of a request body
  size_t max_text = 4000;        // bytes of a text field
  int64_t max_tokens = 256;      // tokens of a prompt (and at most n_ctx)
};

class Explorer {
 public:
  // Loads the model and opens the index (checking it was built from this model), and
  // lists the runs. Throws Error naming the file on bad input.
  explicit Explorer(const ExplorerOptions& opts);
  ~Explorer();
  Explorer(const Explorer&) = delete;
  Explorer& operator=(const Explorer&) = delete;

  HttpReply handle(const HttpRequest& req);
  std::vector<std::string> model_ids() const;

  struct Entry;

 private:
  Entry& entry(const std::string& id);
  nlohmann::json api(const HttpRequest& req, const std::vector<std::string>& parts);
  nlohmann::json models_json();
  nlohmann::json model_json(Entry& e);
  nlohmann::json neuron(Entry& e, const std::string& layer, const std::string& index);
  nlohmann::json probe(Entry& e, const nlohmann::json& body);
  nlohmann::json attention(Entry& e, const nlohmann::json& body);
  nlohmann::json lens(Entry& e, const nlohmann::json& body);
  nlohmann::json runs_json();
  nlohmann::json run_json(const std::string& id);

  ExplorerOptions opts_;
  std::vector<std::unique_ptr<Entry>> entries_;
  std::map<std::string, Entry*> by_id_;
  struct Run {
    std::string id, dir, recipe;
    std::vector<int64_t> steps;
  };
  std::vector<Run> runs_;
};

}  // namespace mechlens
