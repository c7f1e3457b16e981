#include "mechlens/train/progress.h"

#include <unistd.h>

#include <cstdio>
#include <cmath>

namespace mechlens {

namespace {
std::string clock_text(double s) {
  if (!std::isfinite(s) || s < 0) return "?";
  long t = std::lround(s);
  char buf[32];
  if (t >= 3600) std::snprintf(buf, sizeof buf, "%ld:%02ld:%02ld", t / 3600, (t / 60) % 60, t % 60);
  else std::snprintf(buf, sizeof buf, "%ld:%02ld", t / 60, t % 60);
  return buf;
}
}  // namespace

bool Progress::is_terminal() { return isatty(2) == 1; }

Progress::Progress(std::string label, int64_t total, int64_t start, int64_t every)
    : label_(std::move(label)), total_(total), start_(start), every_(every > 0 ? every : 100), tty_(is_terminal()) {
  t0_ = last_draw_ = std::chrono::steady_clock::now();
}

void Progress::update(int64_t done, const std::string& text) {
  auto now = std::chrono::steady_clock::now();
  if (tty_) {
    if (now - last_draw_ < std::chrono::milliseconds(100) && done < total_) return;
  } else if (done % every_ != 0 && done != total_) {
    return;
  }
  last_draw_ = now;
  draw(done, text, false);
}

void Progress::finish(const std::string& text) {
  draw(total_, text, true);
}

void Progress::draw(int64_t done, const std::string& text, bool final) {
  const double el = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0_).count();
  const double rate = el > 0 ? (done - start_) / el : 0;
  const double eta = rate > 0 ? (total_ - done) / rate : NAN;
  char head[96];
  std::snprintf(head, sizeof head, "%lld/%lld", static_cast<long long>(done), static_cast<long long>(total_));
  char tail[96];
  std::snprintf(tail, sizeof tail, " | %.1f it/s | %s %s", rate, final ? "took" : "ETA",
                clock_text(final ? el : eta).c_str());
  if (tty_) {
    const int width = 24;
    const int fill = total_ > 0 ? static_cast<int>(width * static_cast<double>(done) / total_) : width;
    std::string bar(fill, '=');
    if (fill < width) bar += '>', bar += std::string(width - fill - 1, ' ');
    std::fprintf(stderr, "\r\033[K%s [%s] %s %s%s%s", label_.c_str(), bar.c_str(), head, text.c_str(), tail,
                 final ? "\n" : "");
  } else {
    std::fprintf(stderr, "%s %s %s%s\n", label_.c_str(), head, text.c_str(), tail);
  }
  std::fflush(stderr);
}

}  // namespace mechlens
