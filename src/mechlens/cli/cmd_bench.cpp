// mechlens bench engine --config gpt2-small --batch 2 --seq 20 --json
#include "../../../bench/engine_bench.h"
#include "../../../bench/memory_bench.h"
#include "../../../bench/patching_bench.h"
#include "../../../bench/scope_bench.h"
#include "../../../bench/train_bench.h"
#include "mechlens/cli/common.h"

namespace mechlens::cli {

void add_bench(CLI::App& app) {
  auto* sub = app.add_subcommand("bench", "benchmarks (one JSON line each)");
  sub->require_subcommand(1);
  auto* engine = sub->add_subcommand("engine", "forward / run_with_cache timings on random weights");
  auto o = std::make_shared<bench::EngineBenchOptions>();
  auto as_json = std::make_shared<bool>(false);
  engine->add_option("--config", o->config, "model preset (gpt2-small, gpt2-tiny, attn-only-<N>l, solu-1l)");
  engine->add_option("--batch", o->batch)->check(CLI::Range(1, 4096));
  engine->add_option("--seq", o->seq)->check(CLI::Range(1, 1 << 20));
  engine->add_option("--iters", o->iters, "timed repetitions (median reported)")->check(CLI::Range(1, 100000));
  engine->add_option("--warmup", o->warmup)->check(CLI::Range(0, 1000));
  engine->add_option("--hook", o->one_hook, "the hook for run_with_cache(one hook)");
  engine->add_flag("--json", *as_json, "print one JSON line (the default output too)");
  engine->callback([o] {
    nlohmann::json j = bench::run_engine_bench(*o);
    std::printf("%s\n", j.dump().c_str());
  });

  auto* patching = sub->add_subcommand("patching", "the layers x positions activation-patching sweep");
  auto p = std::make_shared<bench::PatchingBenchOptions>();
  patching->add_option("--config", p->config, "model preset");
  patching->add_option("--batch", p->batch)->check(CLI::Range(1, 4096));
  patching->add_option("--seq", p->seq)->check(CLI::Range(2, 1 << 20));
  patching->add_option("--site", p->site, "resid_pre | resid_mid | attn_out | mlp_out | z | q | k | v | pattern");
  patching->add_option("--mode", p->mode, "by_pos | all_pos | dest_src");
  patching->add_option("--iters", p->iters, "timed repetitions (median reported)")->check(CLI::Range(1, 1000));
  patching->add_flag("--reference", p->reference, "also run the unbatched sweep (one forward per index) and compare");
  patching->add_flag("--json", *as_json, "print one JSON line (the default output too)");
  patching->callback([p] {
    nlohmann::json j = bench::run_patching_bench(*p);
    std::printf("%s\n", j.dump().c_str());
  });

  auto* mem = sub->add_subcommand("memory", "peak resident memory of a random model of a real shape vs its weights");
  auto mo = std::make_shared<bench::MemoryBenchOptions>();
  mem->add_option("--config", mo->config, "preset: gpt2-xl, pythia-1.4b, llama-3-8b, mistral-7b (or any other)");
  mem->add_option("--dtype", mo->dtype, "float32 | bfloat16")->check(CLI::IsMember({"float32", "bfloat16"}));
  mem->add_option("--batch", mo->batch)->check(CLI::Range(1, 64));
  mem->add_option("--seq", mo->seq)->check(CLI::Range(1, 1 << 16));
  mem->add_option("--threads", mo->threads)->check(CLI::Range(1, 256));
  mem->add_flag("--json", *as_json, "print one JSON line (the default output too)");
  mem->callback([mo] {
    nlohmann::json j = bench::run_memory_bench(*mo);
    std::printf("%s\n", j.dump().c_str());
  });

  auto* sc = sub->add_subcommand("scope", "building the neuron index vs a plain forward over the same batches");
  auto s = std::make_shared<bench::ScopeBenchOptions>();
  sc->add_option("--config", s->config, "model preset");
  sc->add_option("--tokens", s->tokens, "tokens to index (20000)")->check(CLI::Range(int64_t{1}, int64_t{1} << 32));
  sc->add_option("--ctx", s->ctx, "tokens per document (64)")->check(CLI::Range(2, 1 << 16));
  sc->add_option("--batch", s->batch, "documents per forward (8)")->check(CLI::Range(1, 4096));
  sc->add_option("--top-k", s->top_k, "documents kept per neuron (20)")->check(CLI::Range(1, 1000));
  sc->add_flag("--json", *as_json, "print one JSON line (the default output too)");
  sc->callback([s] {
    nlohmann::json j = bench::run_scope_bench(*s);
    std::printf("%s\n", j.dump().c_str());
  });

  auto* tr = sub->add_subcommand("train", "a recipe's training loop: epochs or steps per second and its loss curve");
  auto t = std::make_shared<bench::TrainBenchOptions>();
  tr->add_option("--task", t->task, "grokking | induction");
  tr->add_option("--p", t->p, "grokking: modulus");
  tr->add_option("--frac-train", t->frac_train, "grokking: training fraction");
  tr->add_option("--epochs", t->epochs, "grokking: epochs")->check(CLI::Range(1, 10000000));
  tr->add_option("--steps", t->steps, "induction: steps")->check(CLI::Range(1, 10000000));
  tr->add_option("--seed", t->seed, "seed");
  tr->add_option("--profile", t->profile, "write a Chrome trace (chrome://tracing) of every ATen op to this file");
  tr->add_flag("--json", *as_json, "print one JSON line (the default output too)");
  tr->callback([t] {
    nlohmann::json j = bench::run_train_bench(*t);
    std::printf("%s\n", j.dump().c_str());
  });
}

}  // namespace mechlens::cli
