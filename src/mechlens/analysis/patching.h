// Activation patching: clean activations patched INTO the corrupted run, one index at
// a time, giving exactly TransformerLens's patching.get_act_patch_* grids (same shape,
// same index order) in a small multiple of one forward.
//
// How the sweep is batched and what it reuses:
// - every patch is a batch element; patches are grouped by the first position they
//   change (p0) and run together, layer by layer;
// - layers before a patch's layer are not run: the element joins at its layer, from
//   the corrupted cache;
// - positions before p0 are not run: attention is causal, so their keys and values
//   are the corrupted run's, fed as a key/value prefix;
// - the unembedding is computed only at the metric's position, and for a logit
//   difference only for the two vocabulary columns it reads;
// - a patch whose clean and corrupted activations are identical leaves the corrupted
//   run unchanged: its value is the corrupted metric, and nothing runs.
#pragma once
#include <ATen/ATen.h>

#include <functional>
#include <string>
#include <vector>

#include "mechlens/model/activation_cache.h"
#include "mechlens/model/hooked_transformer.h"

namespace mechlens {

struct PatchMetric {
  // logit_diff: logit[answer] - logit[wrong]; logit_diff_norm: the same, 0 at the
  // corrupted and 1 at the clean baseline; loss: -log p(answer); prob: p(answer).
  std::string kind = "logit_diff";
  std::vector<int64_t> answer;  // one id, or one per batch row
  std::vector<int64_t> wrong;   // as answer; needed by logit_diff*
  int64_t position = -1;        // where the logits are read (negative: from the end)
  // kind "custom": any function of the patched run's full logits [batch, pos, vocab]
  // to a scalar tensor, as TransformerLens's patching_metric (a Python callable, say).
  // Every patch then unembeds all its positions (those before the first patched one
  // are the corrupted run's), so sweeps run in smaller chunks; answer / wrong /
  // position are unused.
  std::function<at::Tensor(const at::Tensor& logits)> custom;
};

struct PatchResult {
  std::string site, mode;
  at::Tensor grid;                                 // in TransformerLens's index order
  std::vector<std::string> axes;                   // e.g. {"layer", "pos", "head"}
  std::vector<std::vector<std::string>> labels;    // per axis
  double clean_metric = 0, corrupted_metric = 0;
  int64_t patches = 0, skipped = 0;                // skipped: identical activations, nothing run
};

class ActivationPatching {
 public:
  // clean and corrupted: [batch, pos] token ids of equal shape. A ragged batch comes
  // padded with its attention_mask [batch, pos] (1 = real token), shared by clean and
  // corrupted: then every run is masked and the metric is read at each row's own
  // position (metric.position < 0 counts from each row's last real token), so the grid
  // entry of a position is the mean over rows of what patching it does in that row
  // alone (a pad slot changes nothing).
  ActivationPatching(HookedTransformer& model, const at::Tensor& clean, const at::Tensor& corrupted, PatchMetric metric,
                     const at::Tensor& attention_mask = {});
  // As TransformerLens's get_act_patch_*(model, corrupted_tokens, clean_cache, metric):
  // the clean run is given by its cache (with a batch axis, of corrupted's shape, and
  // holding every hook the sweep patches; a full run_with_cache does).
  ActivationPatching(HookedTransformer& model, ActivationCache clean_cache, const at::Tensor& corrupted,
                     PatchMetric metric, const at::Tensor& attention_mask = {});

  // site: resid_pre | resid_mid | resid_post | attn_out | mlp_out | z | q | k | v | pattern
  // mode: by_pos (per position; for pattern: per destination position) | all_pos
  //       (per head over all positions) | dest_src (pattern per destination x source).
  // batched = false runs one full forward per index, as TransformerLens does (the
  // reference the batched sweep is tested against).
  PatchResult run(const std::string& site, const std::string& mode = "by_pos", bool batched = true);
  // TransformerLens's get_act_patch_block_every: [3 = (resid_pre, attn_out, mlp_out), layer, pos].
  PatchResult block_every(bool batched = true);
  // get_act_patch_attn_head_all_pos_every [5 = (z, q, k, v, pattern), layer, head] and
  // get_act_patch_attn_head_by_pos_every [5, layer, pos, head].
  PatchResult head_all_pos_every(bool batched = true);
  PatchResult head_by_pos_every(bool batched = true);

  // Attribution patching (the gradient approximation, Nanda 2023): one forward and
  // one backward on the corrupted run give, for every index of run(site, mode),
  // corrupted_metric + sum over the patched region of (clean - corrupted) * d metric /
  // d activation. Same grid layout as run(site, mode).
  PatchResult attribution(const std::string& site, const std::string& mode = "by_pos");

  double clean_metric() const { return clean_metric_; }
  double corrupted_metric() const { return corrupted_metric_; }
  const ActivationCache& clean_cache() const { return clean_cache_; }
  const ActivationCache& corrupted_cache() const { return corrupted_cache_; }
  const PatchMetric& metric() const { return metric_; }
  // The metric of full logits [batch, pos, vocab] (rows averaged).
  double metric_of_logits(const at::Tensor& logits) const;
  // Each row's metric position [batch].
  const at::Tensor& metric_positions() const { return row_pos_; }
  // Tokens of the sweep: one row of activations per patch element stays within this
  // budget (positions x elements) per batched call.
  int64_t token_budget = 8192;
  // With a custom metric: full logits of one batched call stay within this many floats.
  int64_t logit_budget = int64_t{1} << 25;
  // Called with (patches done, patches in total) as the sweep goes (e.g. a progress bar).
  std::function<void(int64_t, int64_t)> progress;

  struct Spec {
    int layer;
    std::string hook;  // full hook name
    int kind;          // 0 resid-like, 1 head vector (z/q/k/v), 2 pattern
    int64_t pos = -1, head = -1, dest = -1, src = -1;
    int64_t p0 = 0;    // first position the patch can change
    bool skip = false;
    int64_t out = 0;   // flat index into the result
  };

 private:
  std::vector<Spec> specs_for(const std::string& site, const std::string& mode, std::vector<int64_t>& shape,
                              std::vector<std::string>& axes);
  // Adds a site's specs to a stacked sweep, their outputs after those already there.
  void append_specs(std::vector<Spec>& all, const std::string& site, const std::string& mode,
                    std::vector<int64_t>& shape, std::vector<std::string>& axes);
  void finish_spec(Spec& s) const;
  void apply(const Spec& s, at::Tensor& x, int64_t p0) const;
  std::vector<double> evaluate(std::vector<Spec>& specs, bool batched);
  void run_group(std::vector<Spec*>& chunk, int64_t p0, std::vector<double>& out);
  double metric_rows(const at::Tensor& logits_at_pos, const std::vector<int64_t>& cols) const;
  // raw: skip the logit_diff_norm normalisation (used for the baselines themselves).
  at::Tensor metric_tensor(const at::Tensor& logits_at_pos, const std::vector<int64_t>& cols, bool raw = false) const;
  PatchResult make_result(const std::string& site, const std::string& mode, const std::vector<int64_t>& shape,
                          const std::vector<std::string>& axes, std::vector<Spec>& specs, bool batched);

  void init(const at::Tensor& clean_logits, const at::Tensor& corrupted_logits);
  // The metric of full logits [rows, pos, vocab] as a (differentiable) scalar tensor.
  at::Tensor metric_full(const at::Tensor& logits) const;
  bool custom() const { return metric_.kind == "custom"; }

  HookedTransformer& model_;
  at::Tensor corrupted_;
  at::Tensor corrupted_logits_;  // kept for custom metrics (the unpatched prefix)
  PatchMetric metric_;
  ActivationCache clean_cache_, corrupted_cache_;
  double clean_metric_ = 0, corrupted_metric_ = 0;
  int64_t metric_pos_ = 0;        // the largest row's metric position
  at::Tensor mask_;                // [batch, pos] attention mask, or undefined
  at::Tensor row_pos_;             // [batch] int64: each row's metric position
  bool ragged_pos_ = false;        // rows read different positions
  at::Tensor corrupted_at_pos_;    // [batch, columns] corrupted logits at row_pos_ (for rows a patch cannot reach)
  // logits [rows, pos - offset, vocab] at each row's metric position (row r of block k
  // reads row_pos_[r] - offset).
  at::Tensor at_metric_pos(const at::Tensor& x, int64_t offset) const;
  ForwardOptions masked(int64_t repeat = 1) const;
  std::vector<int64_t> columns_;  // vocabulary columns the metric reads (empty: all)
};

// Pearson correlation between two grids of the same shape.
double grid_correlation(const at::Tensor& a, const at::Tensor& b);

}  // namespace mechlens
