// report.html: one self-contained page per run (uPlot embedded, no internet needed) with
// the summary beside the published numbers and one chart per curve.
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

namespace mechlens {

using Series = std::vector<std::pair<int64_t, double>>;

class Report {
 public:
  explicit Report(std::string title) : title_(std::move(title)) {}
  void add_summary(const nlohmann::json& summary);
  // Curves over a shared x axis (steps); NaN and, on a log axis, values <= 0 are gaps.
  void add_chart(const std::string& title, const std::string& xlabel, bool log_y,
                 const std::vector<std::pair<std::string, Series>>& series);
  // Pre-rendered markup (an SVG figure, a table).
  void add_html(const std::string& html) { parts_.push_back(html); }
  void write(const std::string& path) const;  // atomically

 private:
  std::string title_;
  std::vector<std::string> parts_;
  nlohmann::json charts_ = nlohmann::json::array();
};

std::string html_escape(const std::string& s);

}  // namespace mechlens
