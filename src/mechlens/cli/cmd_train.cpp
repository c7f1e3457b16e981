// mechlens train grokking|superposition|induction|addition|lm ... --out RUN_DIR
// mechlens train RECIPE --resume RUN_DIR
// Each recipe trains with the shared trainer, then runs its analyses over the
// checkpoints and writes summary.json and report.html into the run folder.
#include <ATen/Parallel.h>

#include "mechlens/cli/common.h"
#include "mechlens/core/error.h"
#include "mechlens/core/io.h"
#include "mechlens/train/tasks/addition.h"
#include "mechlens/train/tasks/grokking.h"
#include "mechlens/train/tasks/induction.h"
#include "mechlens/train/tasks/lm.h"
#include "mechlens/train/tasks/superposition.h"

namespace mechlens::cli {

namespace {

// --out / --resume, shared by every recipe: exactly one of them.
struct RunArgs {
  std::string out, resume;
  void add_to(CLI::App* sub) {
    sub->add_option("--out", out, "run folder to create");
    sub->add_option("--resume", resume, "continue the run in this folder (after a kill, or to finish it)");
  }
  // The run folder; for a new run, writes its config.json.
  std::string begin(const json& config) const {
    if (out.empty() == resume.empty()) throw Error("give exactly one of --out RUN_DIR and --resume RUN_DIR");
    if (!resume.empty()) return resume;
    if (holds_run(out)) fail(out, "already holds a run; continue it with --resume " + out + " or choose another --out");
    start_run(out, config);
    return out;
  }
};

// --checkpoints, --checkpoint-schedule, --save-every: every recipe's, with its defaults shown.
template <class Config>
void add_checkpoint_options(CLI::App* sub, Config& c, const std::string& unit) {
  sub->add_option("--checkpoints", c.checkpoints, "number of checkpoints")->capture_default_str();
  sub->add_option("--checkpoint-schedule", c.checkpoint_schedule, "linear | log")->capture_default_str();
  sub->add_option("--save-every", c.save_every, "resume-state period in " + unit + " (default: every 10 s)");
}

void print_summary(const json& s) {
  std::printf("%s\n", s.dump(2).c_str());
}

template <class Config, class Run>
void run_recipe(const Config& flags, const RunArgs& r, const char* name, Run run);

void add_grokking(CLI::App* train) {
  auto* sub = train->add_subcommand("grokking", "modular addition (Nanda et al. 2023): grokking and its Fourier algorithm");
  auto c = std::make_shared<GrokkingConfig>();
  auto r = std::make_shared<RunArgs>();
  r->add_to(sub);
  sub->add_option("--p", c->p, "modulus (113)");
  sub->add_option("--frac-train", c->frac_train, "fraction of the p^2 pairs used for training (0.5; the paper: 0.3)");
  sub->add_option("--seed", c->seed, "seed of the split and the init (0)");
  sub->add_option("--epochs", c->epochs, "full-batch epochs (2000; the paper at 0.3: 40000)");
  sub->add_option("--lr", c->lr, "AdamW learning rate (1e-3)");
  sub->add_option("--weight-decay", c->weight_decay, "AdamW decoupled weight decay (1.0)");
  sub->add_option("--warmup", c->warmup, "linear warm-up steps (10)");
  sub->add_option("--eval-every", c->eval_every, "test evaluation period in epochs (10)");
  sub->add_option("--stop-test-loss", c->stop_test_loss, "stop once an evaluated test loss is below this");
  sub->add_option("--d-model", c->d_model, "residual width (128)");
  sub->add_option("--n-heads", c->n_heads, "attention heads (4)");
  sub->add_option("--d-mlp", c->d_mlp, "MLP width (512)");
  sub->add_flag("!--float32-loss", c->float64_loss, "cross-entropy in float32 (default float64, as the authors)");
  add_checkpoint_options(sub, *c, "epochs");
  sub->callback([c, r] { run_recipe(*c, *r, "grokking", run_grokking); });
}

// The shared shape of a recipe's callback: a new run from the flags, or the saved config.
template <class Config, class Run>
void run_recipe(const Config& flags, const RunArgs& r, const char* name, Run run) {
  Config cfg = flags;
  if (!r.resume.empty()) cfg = Config::from_json(resume_run(r.resume), join_path(r.resume, "config.json"));
  else cfg.validate(name);
  const std::string dir = r.begin(cfg.to_json());
  print_summary(run(cfg, dir, !r.resume.empty()));
}

void add_induction(CLI::App* train) {
  auto* sub = train->add_subcommand("induction", "2-layer attention-only model on repeated random tokens: induction heads");
  auto c = std::make_shared<InductionConfig>();
  auto r = std::make_shared<RunArgs>();
  r->add_to(sub);
  sub->add_option("--layers", c->layers, "attention-only layers (2; 1 is the control without a phase change)");
  sub->add_option("--d-model", c->d_model, "residual width (48)");
  sub->add_option("--n-heads", c->n_heads, "heads per layer (4)");
  sub->add_option("--vocab", c->vocab, "vocabulary (64)");
  sub->add_option("--seq-len", c->seq_len, "sequence length (64)");
  sub->add_option("--min-sub", c->min_sub, "shortest repeated block (8)");
  sub->add_option("--max-sub", c->max_sub, "longest repeated block (seq_len / 2)");
  sub->add_option("--batch", c->batch, "sequences per step (64)");
  sub->add_option("--steps", c->steps, "steps (1500)");
  sub->add_option("--lr", c->lr, "AdamW learning rate (3e-3)");
  sub->add_option("--weight-decay", c->weight_decay, "AdamW weight decay (0.01)");
  sub->add_option("--seed", c->seed, "seed of the init and the data (1)");
  sub->add_option("--eval-every", c->eval_every, "head-score period in steps (50)");
  add_checkpoint_options(sub, *c, "steps");
  sub->callback([c, r] { run_recipe(*c, *r, "induction", run_induction); });
}

void add_superposition(CLI::App* train) {
  auto* sub = train->add_subcommand("superposition", "toy models of superposition (Elhage et al. 2022), many instances at once");
  auto c = std::make_shared<SuperpositionConfig>();
  auto r = std::make_shared<RunArgs>();
  r->add_to(sub);
  sub->add_option("--features", c->features, "features (5)");
  sub->add_option("--hidden", c->hidden, "hidden dimensions (2)");
  sub->add_option("--sparsity", c->sparsity, "sparsities S = 1 - feature probability, each trained --instances times")
      ->delimiter(',');
  sub->add_option("--instances", c->instances, "instances per sparsity (10)");
  sub->add_option("--importance-decay", c->importance_decay, "importance of feature i = decay^i (0.9)");
  sub->add_flag("!--no-relu", c->relu, "the linear model x' = W^T W x + b (the control)");
  sub->add_flag("--phase-diagram", c->phase_diagram, "2 features in 1 dimension over a sparsity x importance grid");
  sub->add_option("--batch", c->batch, "batch (1024)");
  sub->add_option("--steps", c->steps, "steps (10000)");
  sub->add_option("--lr", c->lr, "AdamW learning rate (1e-3)");
  sub->add_option("--seed", c->seed, "seed (0)");
  add_checkpoint_options(sub, *c, "steps");
  sub->callback([c, r] { run_recipe(*c, *r, "superposition", run_superposition); });
}

void add_addition(CLI::App* train) {
  auto* sub = train->add_subcommand("addition", "n-digit addition: a separate phase change per answer digit");
  auto c = std::make_shared<AdditionConfig>();
  auto r = std::make_shared<RunArgs>();
  r->add_to(sub);
  sub->add_option("--digits", c->digits, "digits per operand (5)");
  sub->add_option("--batch", c->batch, "sums per step (64)");
  sub->add_option("--steps", c->steps, "steps (3000)");
  sub->add_option("--lr", c->lr, "AdamW learning rate (1e-3)");
  sub->add_option("--weight-decay", c->weight_decay, "AdamW weight decay (1.0)");
  sub->add_option("--seed", c->seed, "seed of the init and the data (0)");
  sub->add_option("--eval-every", c->eval_every, "test evaluation period in steps (50)");
  add_checkpoint_options(sub, *c, "steps");
  sub->callback([c, r] { run_recipe(*c, *r, "addition", run_addition); });
}

void add_lm(CLI::App* train) {
  auto* sub = train->add_subcommand("lm", "a toy language model on a text corpus, with its own SentencePiece vocabulary");
  auto c = std::make_shared<LmConfig>();
  auto r = std::make_shared<RunArgs>();
  r->add_to(sub);
  sub->add_option("--corpus", c->corpus, "moby-dick | sotu | a UTF-8 text file (moby-dick)");
  sub->add_option("--vocab", c->vocab, "SentencePiece vocabulary trained on the corpus (2048)");
  sub->add_option("--layers", c->layers, "layers, 1..4 (1)");
  sub->add_flag("--attn-only", c->attn_only, "attention-only blocks");
  sub->add_option("--act", c->act, "MLP activation: gelu | solu (gelu)");
  sub->add_option("--d-model", c->d_model, "residual width (128)");
  sub->add_option("--n-heads", c->n_heads, "heads per layer (4)");
  sub->add_option("--d-mlp", c->d_mlp, "MLP width (512)");
  sub->add_option("--n-ctx", c->n_ctx, "context length (64)");
  sub->add_option("--batch", c->batch, "sequences per step (32)");
  sub->add_option("--steps", c->steps, "steps (3000)");
  sub->add_option("--lr", c->lr, "peak AdamW learning rate, cosine to a tenth (1e-3)");
  sub->add_option("--weight-decay", c->weight_decay, "AdamW weight decay (0.1)");
  sub->add_option("--grad-clip", c->grad_clip, "gradient-norm clipping (1.0; 0 = off)");
  sub->add_option("--warmup", c->warmup, "warm-up steps (100)");
  sub->add_option("--repeat-frac", c->repeat_frac, "fraction of training windows that repeat a span of text (0)");
  sub->add_option("--random-repeat-frac", c->random_repeat_frac,
                  "fraction of training windows of <s> + X + X, X random pieces (0): a curriculum for induction");
  sub->add_option("--init-std", c->init_std, "std of the initial weight matrices (0.02, GPT-2's)");
  sub->add_flag("!--no-layernorm", c->layernorm, "no LayerNorms (as the authors' algorithmic toy models)");
  sub->add_option("--seed", c->seed, "seed of the init and the batches (0)");
  sub->add_option("--eval-every", c->eval_every, "held-out evaluation period in steps (100)");
  add_checkpoint_options(sub, *c, "steps");
  sub->callback([c, r] { run_recipe(*c, *r, "lm", run_lm); });
}

}  // namespace

void add_train(CLI::App& app) {
  auto* train = app.add_subcommand("train", "train a toy model with a recipe; writes a run folder");
  train->require_subcommand(1);
  add_grokking(train);
  add_induction(train);
  add_superposition(train);
  add_addition(train);
  add_lm(train);
}

void add_analyze(CLI::App& app) {
  auto* sub = app.add_subcommand("analyze", "re-run a recipe's analyses over a run folder's checkpoints");
  auto recipe = std::make_shared<std::string>();
  auto dir = std::make_shared<std::string>();
  sub->add_option("recipe", *recipe, "grokking | induction | superposition | addition | lm")->required();
  sub->add_option("run_dir", *dir, "run folder")->required();
  sub->callback([recipe, dir] {
    if (*recipe == "grokking") return print_summary(analyze_grokking(*dir));
    if (*recipe == "induction") return print_summary(analyze_induction(*dir));
    if (*recipe == "superposition") return print_summary(analyze_superposition(*dir));
    if (*recipe == "addition") return print_summary(analyze_addition(*dir));
    if (*recipe == "lm") return print_summary(analyze_lm(*dir));
    throw Error("analyze: unknown recipe " + *recipe + " (grokking | induction | superposition | addition | lm)");
  });
}

}  // namespace mechlens::cli
