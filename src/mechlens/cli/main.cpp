// mechlens: the command-line shell. Each subcommand lives in its own file and calls
// the library; this file only sets threads up and turns errors into one line on
// stderr with exit status 2.
#include <ATen/Parallel.h>
#include <malloc.h>

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>

#include "mechlens/cli/common.h"
#include "mechlens/core/error.h"

namespace {
std::string first_line(const std::string& s) { return s.substr(0, s.find('\n')); }
}  // namespace

namespace {
// OpenBLAS's idle workers spin (sched_yield) for 2^28 cycles before sleeping, and on a
// small machine they take the cores from ATen's own threads between GEMMs: the toy
// training loops run 10-25 % faster with a 2^18-cycle spin. OpenBLAS reads the setting
// when it loads, so a training command that lacks it re-executes itself once with it.
void tune_openblas_for_training(int argc, char** argv) {
  const bool training = argc > 1 && (std::string(argv[1]) == "train" ||
                                     (argc > 2 && std::string(argv[1]) == "bench" && std::string(argv[2]) == "train"));
  if (!training || std::getenv("OPENBLAS_THREAD_TIMEOUT")) return;
  setenv("OPENBLAS_THREAD_TIMEOUT", "18", 1);
  execv("/proc/self/exe", argv);  // returns only on failure: then carry on as we are
}
}  // namespace

int main(int argc, char** argv) {
  tune_openblas_for_training(argc, argv);
  // Training (and the explorer, which trains its default models on first run): keep
  // freed tensor buffers in the heap instead of returning them to the kernel after every
  // op: training loops reuse the same sizes, and the page faults of fresh mmaps cost more
  // than the arithmetic on small models. Other commands keep glibc's defaults, which
  // give memory back: on a real model the kept heap cost up to 1 GiB of RSS.
  const std::string cmd = argc > 1 ? argv[1] : "";
  if (cmd == "train" || cmd == "explore" || (cmd == "bench" && argc > 2 && std::string(argv[2]) == "train")) {
    mallopt(M_MMAP_THRESHOLD, 32 << 20);
    mallopt(M_TRIM_THRESHOLD, 256 << 20);
  }
  int threads = static_cast<int>(std::thread::hardware_concurrency());
  if (const char* t = std::getenv("MECHLENS_THREADS")) threads = std::max(1, std::atoi(t));
  at::set_num_threads(std::max(1, threads));

  CLI::App app{"mechlens: mechanistic interpretability on hooked transformers"};
  app.require_subcommand(1);
  mechlens::cli::add_init(app);
  mechlens::cli::add_info(app);
  mechlens::cli::add_verify(app);
  mechlens::cli::add_tokenize(app);
  mechlens::cli::add_run(app);
  mechlens::cli::add_generate(app);
  mechlens::cli::add_cache(app);
  mechlens::cli::add_patch(app);
  mechlens::cli::add_heads(app);
  mechlens::cli::add_dla(app);
  mechlens::cli::add_ablate(app);
  mechlens::cli::add_circuits(app);
  mechlens::cli::add_ioi(app);
  mechlens::cli::add_lens(app);
  mechlens::cli::add_scope(app);
  mechlens::cli::add_explore(app);
  mechlens::cli::add_train(app);
  mechlens::cli::add_analyze(app);
  mechlens::cli::add_bench(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "mechlens: %s (see --help)\n", first_line(e.what()).c_str());
    return 2;
  } catch (const mechlens::Error& e) {
    std::fprintf(stderr, "mechlens: %s\n", first_line(e.what()).c_str());
    return 2;
  } catch (const c10::Error& e) {
    std::fprintf(stderr, "mechlens: %s\n", first_line(e.what_without_backtrace()).c_str());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "mechlens: %s\n", first_line(e.what()).c_str());
    return 2;
  }
  return 0;
}
