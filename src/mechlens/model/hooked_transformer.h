// HookedTransformer: a decoder-only transformer whose every activation passes a
// HookPoint named exactly as in TransformerLens (blocks.3.attn.hook_pattern, ...).
#pragma once
#include <ATen/ATen.h>

#include <functional>
#include <memory>
#include <optional>
#include <regex>
#include <string>
#include <unordered_map>
#include <vector>

#include "mechlens/model/activation_cache.h"
#include "mechlens/model/components.h"
#include "mechlens/model/config.h"
#include "mechlens/model/hook_point.h"
#include "mechlens/model/weights.h"

namespace mechlens {

// Which hook names a run_with_cache keeps.
using NameFilter = std::function<bool(const std::string&)>;
NameFilter all_names();
NameFilter names_in(std::vector<std::string> names);
NameFilter names_matching(const std::string& regex);  // std::regex_search

// Keys and values of every layer for incremental decoding.
struct KVCache {
  std::vector<KVCacheEntry> layers;
  int64_t length() const { return layers.empty() ? 0 : layers[0].length(); }
};

struct ForwardOptions {
  // When > 0 (or input_is_residual) the input is the residual stream
  // [batch, pos, d_model] entering this layer.
  int start_at_layer = 0;
  bool input_is_residual = false;
  // When >= 0 the run stops before this layer and returns its resid_pre.
  int stop_at_layer = -1;
  KVCache* kv_cache = nullptr;
  // Compute the last block's queries, attention output, MLP and unembedding only at
  // the last position (keys and values still see every position): logits are
  // [batch, 1, d_vocab_out]. For losses read at the last position (modular addition).
  bool last_position_only = false;
  // For models without a first LayerNorm: compute layer 0's q, k, v as rows of
  // (W_E W_qkv)[token] + (W_pos W_qkv)[pos] + b_qkv instead of (W_E[token] + W_pos[pos]) W_qkv,
  // the same sum in another order (float rounding differs). Much cheaper when
  // d_vocab << batch x pos, as in the toy recipes. Ignored when it does not apply (a
  // LayerNorm, a KV cache, per-head inputs, hooks on hook_embed / hook_pos_embed /
  // blocks.0.hook_resid_pre).
  bool fold_embeddings = false;
  // [batch, past + pos] with 1 at real tokens and 0 at padding (any integer or bool
  // dtype), as TransformerLens's attention_mask: padded keys are never attended to,
  // positions count real tokens only (cumsum(mask) - 1, 0 at leading pads), and a
  // standard positional embedding is 0 at pads. Undefined: every token is real.
  at::Tensor attention_mask;
};

// Each row's last real position, from an attention mask [batch, pos]: the index of its
// last 1 (right padding: length - 1; left padding: pos - 1). Rows without a real token
// give 0. Undefined mask: pos - 1 for every row of `batch`.
at::Tensor last_real_positions(const at::Tensor& attention_mask, int64_t batch, int64_t pos);
// TransformerLens's position ids for a mask [batch, n]: cumsum - 1, clamped at 0.
at::Tensor mask_position_ids(const at::Tensor& attention_mask);

struct ForwardHookSpec {
  NameFilter filter;  // which hook points
  ForwardHook fn;
};
struct BackwardHookSpec {
  NameFilter filter;
  BackwardHook fn;
};

class HookedTransformer {
 public:
  // `processing` describes the weight processing already applied ("none", "tl", ...).
  HookedTransformer(ModelConfig cfg, StateDict weights, std::string processing = "none");
  HookedTransformer(const HookedTransformer&) = delete;
  ~HookedTransformer();

  const ModelConfig& cfg() const { return cfg_; }
  // TL-named weights. W_Q, W_K, W_V, b_Q, b_K, b_V (and W_U when tied to W_E) are views
  // of the storages that parameters() lists, so they always show the current weights.
  const StateDict& state_dict() const { return sd_; }
  // The trainable storages, one per distinct weight, sorted by name: every state_dict()
  // entry that is not a view, plus blocks.L.attn.W_qkv [d_model, (h + 2 kvh) d_head] and
  // blocks.L.attn.b_qkv. An optimizer that updates these in place is seen by the next
  // forward with no rebinding.
  std::vector<std::pair<std::string, at::Tensor>> parameters() const;
  // Switches requires_grad on every storage in parameters() except those named in
  // `except` (which get the opposite), and remakes the views so gradients reach the
  // storages through them.
  void set_requires_grad(bool on, const std::vector<std::string>& except = {});
  const std::string& processing() const { return processing_; }
  // Replaces the weights (validated against the config) and the processing label.
  void load_state_dict(StateDict sd, std::string processing);
  // TransformerLens's optional hook points (set_use_attn_result & co). Switching them
  // rebuilds the hook points, so attached hooks are dropped.
  void set_optional_hooks(bool use_attn_result, bool use_split_qkv_input, bool use_hook_mlp_in, bool use_attn_in);
  // Replaces config and weights together (weight processing changes both).
  void reset(ModelConfig cfg, StateDict sd, std::string processing);

  // tokens [batch, pos] int64 -> logits [batch, pos, d_vocab_out]; or the residual
  // stream when stop_at_layer is set. Throws mechlens::Error on out-of-range input.
  at::Tensor forward(const at::Tensor& input, const ForwardOptions& opts = {});
  // ln_final then the unembedding of a residual stream [..., d_model]; only the given
  // vocabulary columns when `columns` is non-empty (e.g. the two of a logit difference).
  at::Tensor unembed(const at::Tensor& resid, const std::vector<int64_t>& columns = {});
  // Mean next-token cross-entropy of logits [b, p, v] against tokens [b, p]. With an
  // attention mask, as TransformerLens: only positions whose token and next token are
  // both real count, and the mean is over those.
  static at::Tensor loss(const at::Tensor& logits, const at::Tensor& tokens, const at::Tensor& attention_mask = {});
  // Per-position next-token losses [b, p-1] (0 where the mask excludes a position).
  static at::Tensor per_token_loss(const at::Tensor& logits, const at::Tensor& tokens,
                                   const at::Tensor& attention_mask = {});

  std::pair<at::Tensor, ActivationCache> run_with_cache(const at::Tensor& input, const NameFilter& filter = all_names(),
                                                        const ForwardOptions& opts = {});
  // Hooks last for this call only.
  at::Tensor run_with_hooks(const at::Tensor& input, const std::vector<ForwardHookSpec>& fwd,
                            const std::vector<BackwardHookSpec>& bwd = {}, const ForwardOptions& opts = {});

  // Hooks that stay until reset_hooks (temporary ones) or reset_hooks(true) (permanent).
  void add_hook(const NameFilter& filter, ForwardHook fn, bool permanent = false);
  void add_backward_hook(const NameFilter& filter, BackwardHook fn, bool permanent = false);
  void reset_hooks(bool including_permanent = false);

  // Hook points that fire under this config, in execution order.
  const std::vector<HookPoint*>& hook_points() const { return order_; }
  std::vector<std::string> hook_names() const;
  HookPoint* hook(const std::string& name) const;  // nullptr if absent

  // Checks tokens are int64 [batch, pos] with ids < d_vocab and pos <= n_ctx.
  void check_tokens(const at::Tensor& tokens, int64_t past = 0) const;

 private:
  struct Block;
  void build();
  void bind();
  void make_views();
  void layer_views(int layer);  // sd_'s W_Q..b_V of one layer as views of its fused storage
  AttnRun attn_run(int64_t batch, int64_t past, int64_t pos, const at::Tensor& mask, const at::Tensor& position_ids);

  ModelConfig cfg_;
  StateDict sd_;
  std::string processing_;
  StateDict fused_;                    // blocks.L.attn.W_qkv / b_qkv
  std::vector<std::string> view_names_;  // sd_ entries that are views of other storages
  bool tied_ = false;                    // W_U is W_E.t()
  at::Tensor W_E_, W_pos_, W_U_, b_U_;
  std::unique_ptr<HookPoint> hook_embed_, hook_pos_embed_;
  std::vector<std::unique_ptr<Block>> blocks_;
  std::unique_ptr<Norm> ln_final_;
  std::unique_ptr<RotaryTables> rotary_;  // shared by every layer; null without rotary
  std::vector<HookPoint*> order_;
  std::unordered_map<std::string, HookPoint*> by_name_;
};

}  // namespace mechlens
