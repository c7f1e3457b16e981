// mechlens: the command-line shell. Each subcommand lives in its own file and calls
// the library; this file only sets threads up and turns errors into one line on
// stderr with exit status 2.
#include <ATen/Parallel.h>
#include <malloc.h>

#include <cstdio>
#include <thread>

#include "mechlens/cli/common.h"
#include "mechlens/core/error.h"

namespace {
std::string first_line(const std::string& s) { return s.substr(0, s.find('\n')); }
}  // namespace

int main(int argc, char** argv) {
  // Keep freed tensor buffers in the heap instead of returning them to the kernel after
  // every op: training loops reuse the same sizes, and the page faults of fresh mmaps
  // cost more than the arithmetic on small models.
  mallopt(M_MMAP_THRESHOLD, 32 << 20);
  mallopt(M_TRIM_THRESHOLD, 256 << 20);
  int threads = static_cast<int>(std::thread::hardware_concurrency());
  if (const char* t = std::getenv("MECHLENS_THREADS")) threads = std::max(1, std::atoi(t));
  at::set_num_threads(std::max(1, threads));

  CLI::App app{"mechlens: mechanistic interpretability on hooked transformers"};
  app.require_subcommand(1);
  mechlens::cli::add_init(app);
  mechlens::cli::add_info(app);
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
