// The neuron index file (SQLite, one per model + corpus): what `mechlens scope build`
// writes and `mechlens explore` reads.
//
//   meta(key, value)        model identity (name, config, weight fingerprint), the corpus,
//                           ctx, top_k, bins, hook, counts; complete = 1 once finished
//   docs(id, tokens)        every indexed document (int32 token ids, ctx of them)
//   vocab(id, token)        the tokenizer's string of every id (TL's to_str_tokens)
//   neurons(layer, neuron, max_act, min_act, mean, frac_positive, hist_exp, hist)
//   examples(layer, neuron, rank, doc, pos, act, acts)   top-k documents, acts float32[ctx]
//   logit_effects(layer, neuron, kind, rank, token, value) kind 'top' | 'bottom' of W_out W_U
//   state(name, dtype, shape, data)  resume state of an unfinished build (dropped at the end)
//
// A build writes OUT.partial and renames it to OUT when complete.
#pragma once
#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "mechlens/scope/neuron_stats.h"

namespace mechlens {

class SqliteDb;

struct LogitEffects {  // per layer: [n, k] ids and values
  at::Tensor top_ids, top_values, bottom_ids, bottom_values;
};

class NeuronIndexWriter {
 public:
  explicit NeuronIndexWriter(const std::string& path);
  ~NeuronIndexWriter();
  // The build description stored by an earlier, unfinished build of this file.
  std::optional<nlohmann::json> build_meta();
  bool complete();  // finish() has committed
  // Starts a new build: meta, documents [D, ctx] and the vocabulary.
  void begin(const nlohmann::json& build, const at::Tensor& docs, const std::vector<std::string>& vocab);
  // Resume state: documents done and every layer's accumulator (one transaction).
  void save_state(int64_t done_docs, const std::vector<NeuronAccumulator>& layers);
  // Loads it into `layers` (already constructed with the right shapes); returns the
  // documents done, or 0 when there is none.
  int64_t load_state(std::vector<NeuronAccumulator>& layers);
  // Writes the results, drops the state and marks the file complete.
  void finish(const std::vector<NeuronAccumulator>& layers, const std::vector<LogitEffects>& effects);

 private:
  std::unique_ptr<SqliteDb> db_;
};

struct IndexedExample {
  int64_t doc = 0, pos = 0;
  double act = 0;
  std::vector<int64_t> tokens;
  std::vector<float> acts;
};
struct TokenValue {
  int64_t id = 0;
  double value = 0;
};
struct NeuronRecord {
  int64_t layer = 0, neuron = 0;
  double max_act = 0, min_act = 0, mean = 0, frac_positive = 0;
  std::vector<double> edges;   // bins + 1 edges, empty bins at both ends trimmed
  std::vector<int64_t> counts;
  std::vector<IndexedExample> examples;  // by activation, descending
  std::vector<TokenValue> top, bottom;
};

class NeuronIndex;
// The API's shape: max_act, min_act, mean, frac_positive, histogram {edges, counts},
// examples [{doc, pos, act, tokens (strings), ids, acts}], logit_effects {top, bottom}
// (each [{token, id, value}]).
nlohmann::json neuron_json(const NeuronRecord& r, const NeuronIndex& index);

// Read-only, thread-safe.
class NeuronIndex {
 public:
  // Throws Error naming the file when it is missing, not SQLite, or not a complete index.
  explicit NeuronIndex(const std::string& path);
  ~NeuronIndex();
  const std::string& path() const { return path_; }
  const nlohmann::json& build() const { return build_; }  // the build description
  int64_t n_layers() const { return n_layers_; }
  int64_t n_neurons() const { return n_neurons_; }
  int64_t n_docs() const { return n_docs_; }
  const std::vector<std::string>& vocab() const { return vocab_; }
  std::string token(int64_t id) const;
  // Throws Error for a layer or neuron out of range.
  NeuronRecord neuron(int64_t layer, int64_t index) const;
  std::vector<int64_t> doc_tokens(int64_t doc) const;

 private:
  std::string path_;
  std::unique_ptr<SqliteDb> db_;
  mutable std::mutex mu_;
  nlohmann::json build_;
  int64_t n_layers_ = 0, n_neurons_ = 0, n_docs_ = 0;
  std::vector<std::string> vocab_;
};

}  // namespace mechlens
