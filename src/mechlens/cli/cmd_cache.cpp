// mechlens cache --model DIR --tokens FILE.json --out OUT.safetensors
//   [--processing none|tl] [--names REGEX] [--padding-side right|left] [--pad-id N]
// OUT holds logits [batch, pos, d_vocab_out], loss [1] and every cached activation
// under its TransformerLens hook name, all float32. Rows of different lengths are padded
// (right by default, as TransformerLens) and run with an attention mask: then OUT also
// holds that attention_mask [batch, max_len] (int64) and input_ids, the activations are
// in the same padded layout, and the loss counts real next tokens only. Nothing is
// written on error.
#include "mechlens/cli/common.h"
#include "mechlens/core/error.h"
#include "mechlens/core/io.h"
#include "mechlens/loading/safetensors.h"

namespace mechlens::cli {

void add_cache(CLI::App& app) {
  auto* sub = app.add_subcommand("cache", "run token ids and save logits, loss and every activation");
  struct Opts {
    ModelArgs m;
    std::string tokens, out, names, padding_side = "right";
    int64_t pad_id = -1;
    bool attn_result = false, split_qkv = false, mlp_in = false, attn_in = false;
  };
  auto o = std::make_shared<Opts>();
  o->m.add_to(sub, true);
  sub->add_option("--tokens", o->tokens,
                  "JSON file: array of arrays of token ids (any lengths: padded), or {\"input_ids\", \"attention_mask\"}")
      ->required();
  sub->add_option("--padding-side", o->padding_side, "pad shorter rows on the right (default, as TL) or the left");
  sub->add_option("--pad-id", o->pad_id, "token id written at pad slots (default: the model's EOS, else 0)");
  sub->add_option("--out", o->out, "output .safetensors file")->required();
  sub->add_option("--names", o->names, "only cache hook names matching this regex (std::regex_search)");
  sub->add_flag("--use-attn-result", o->attn_result, "also cache attn.hook_result (per-head outputs), as TL's flag");
  sub->add_flag("--use-split-qkv-input", o->split_qkv, "also cache hook_q_input / hook_k_input / hook_v_input");
  sub->add_flag("--use-hook-mlp-in", o->mlp_in, "also cache hook_mlp_in");
  sub->add_flag("--use-attn-in", o->attn_in, "also cache hook_attn_in");
  sub->callback([o] {
    if (dir_exists(o->out)) fail(o->out, "is a directory");
    NameFilter filter = all_names();
    try {
      if (!o->names.empty()) filter = names_matching(o->names);
    } catch (const Error& e) {
      throw Error(std::string("--names: ") + e.what());
    }
    const PaddingSide side = parse_padding_side(o->padding_side, "--padding-side");
    auto model = load(o->m);
    if (o->attn_result || o->split_qkv || o->mlp_in || o->attn_in)
      model->set_optional_hooks(o->attn_result, o->split_qkv, o->mlp_in, o->attn_in);
    const int64_t pad_id = o->pad_id >= 0 ? o->pad_id : default_pad_id(model->cfg());
    if (pad_id >= model->cfg().d_vocab) fail("--pad-id", "pad id " + std::to_string(pad_id) + " is not below d_vocab");
    TokenBatch batch = read_token_batch(o->tokens, side, pad_id);
    const at::Tensor& tokens = batch.tokens;
    try {
      model->check_tokens(tokens);
    } catch (const Error& e) {
      fail(o->tokens, e.what());
    }
    at::NoGradGuard no_grad;
    ForwardOptions fo;
    fo.attention_mask = batch.attention_mask;
    auto [logits, cache] = model->run_with_cache(tokens, filter, fo);
    std::vector<std::pair<std::string, at::Tensor>> out;
    out.push_back({"logits", logits.to(at::kFloat)});
    if (tokens.size(1) > 1)
      out.push_back({"loss", HookedTransformer::loss(logits, tokens, batch.attention_mask).view({1})});
    if (batch.attention_mask.defined()) {
      out.push_back({"attention_mask", batch.attention_mask});
      out.push_back({"input_ids", tokens});
    }
    for (const auto& n : cache.names()) out.push_back({n, cache[n].to(at::kFloat)});
    save_safetensors(o->out, out,
                     {{"model", o->m.model}, {"processing", model->processing()}, {"producer", "mechlens cache"}});
    std::fprintf(stderr, "mechlens: wrote %zu tensors to %s (processing: %s)\n", out.size(), o->out.c_str(),
                 model->processing().c_str());
  });
}

}  // namespace mechlens::cli
