// mechlens explore [--model DIR] [--index INDEX.db] [--runs DIR] [--host 127.0.0.1] [--port 8080]
// The explorer: a local Neuroscope and workbench in the browser (explore/explorer.h).
#include <atomic>
#include <chrono>
#include <csignal>
#include <thread>
#include <cstdio>

#include "mechlens/cli/common.h"
#include "mechlens/core/error.h"
#include "mechlens/explore/defaults.h"
#include "mechlens/explore/explorer.h"
#include "mechlens/http/server.h"

namespace mechlens::cli {

namespace {
// The signal handler only sets a flag (async-signal-safe); a watcher thread stops the
// server once it is running, so a signal that comes before listening starts is not lost.
volatile std::sig_atomic_t g_stop = 0;
void on_signal(int) { g_stop = 1; }
}  // namespace

void add_explore(CLI::App& app) {
  auto* sub = app.add_subcommand("explore", "serve the explorer (neurons, probes, attention, logit lens, runs) in the browser");
  struct Opts {
    ExplorerOptions e;
    std::string host = "127.0.0.1";
    int port = 8080;
    std::string port_file;
    bool defaults = false, auto_index = false;
    int64_t auto_index_tokens = 32768;
  };
  auto o = std::make_shared<Opts>();
  sub->add_option("--model", o->e.model_dir, "model folder (Hugging Face or mechlens checkpoint)");
  sub->add_option("--index", o->e.index_path, "its neuron index (from mechlens scope build)");
  sub->add_option("--runs", o->e.runs_dir, "folder of training-lab run folders (each checkpoint becomes a model)");
  sub->add_option("--host", o->host, "address to bind (127.0.0.1: this machine only)");
  sub->add_option("--port", o->port, "port (0: any free port)")->check(CLI::Range(0, 65535));
  sub->add_option("--port-file", o->port_file, "write the bound port to this file once serving (for scripts)");
  sub->add_flag("--default", o->defaults,
                "serve the training lab's default toy language models (trained and indexed on first use, cached in "
                "$MECHLENS_HOME or ~/.cache/mechlens)");
  sub->add_flag("--auto-index", o->auto_index, "index --model on Moby-Dick once (cached) when --index is not given");
  sub->add_option("--auto-index-tokens", o->auto_index_tokens, "tokens of Moby-Dick for --auto-index (32768)")
      ->check(CLI::Range(int64_t{64}, int64_t{1} << 30));
  sub->add_option("--max-tokens", o->e.max_tokens, "longest prompt in tokens (256)")->check(CLI::Range(1, 1 << 16));
  sub->callback([o] {
    if (o->defaults) {
      if (!o->e.runs_dir.empty()) throw Error("explore: --default serves its own runs folder; drop --runs");
      o->e.runs_dir = prepare_default_runs(mechlens_home());
    }
    if (o->auto_index && !o->e.model_dir.empty() && o->e.index_path.empty())
      o->e.index_path = cached_model_index(mechlens_home(), o->e.model_dir, o->auto_index_tokens);
    if (o->e.model_dir.empty() && o->e.index_path.empty() && o->e.runs_dir.empty())
      throw Error("explore: give --model, --index, --runs or --default");
    Explorer ex(o->e);
    ExplorerServer server(ex, o->host, o->port, o->e.max_body);
    std::signal(SIGINT, on_signal);
    std::signal(SIGTERM, on_signal);
    std::atomic<bool> done{false};
    std::thread watcher([&] {
      while (!done) {
        if (g_stop && server.running()) server.stop();
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      }
    });
    std::printf("mechlens explorer: http://%s:%d/  (%zu model%s; Ctrl-C stops it)\n", o->host.c_str(), server.port(),
                ex.model_ids().size(), ex.model_ids().size() == 1 ? "" : "s");
    std::fflush(stdout);
    if (!o->port_file.empty()) {
      std::string tmp = o->port_file + ".tmp";
      if (FILE* f = std::fopen(tmp.c_str(), "w")) {
        std::fprintf(f, "%d\n", server.port());
        std::fclose(f);
        std::rename(tmp.c_str(), o->port_file.c_str());
      }
    }
    if (!g_stop) server.run();
    done = true;
    watcher.join();
  });
}

}  // namespace mechlens::cli
