// A progress bar on stderr: "[=====>    ] 420/1000 loss 0.0312 | 35.1 it/s | ETA 0:16" redrawn in
// place on a terminal; one plain line every `every` steps (and at the end) otherwise.
#pragma once
#include <chrono>
#include <cstdint>
#include <string>

namespace mechlens {

class Progress {
 public:
  Progress(std::string label, int64_t total, int64_t start = 0, int64_t every = 100);
  // Call after step `done` (1-based count of steps finished) with the text to show.
  void update(int64_t done, const std::string& text);
  void finish(const std::string& text);
  static bool is_terminal();

 private:
  void draw(int64_t done, const std::string& text, bool final);
  std::string label_;
  int64_t total_, start_, every_;
  bool tty_;
  std::chrono::steady_clock::time_point t0_, last_draw_;
};

}  // namespace mechlens
