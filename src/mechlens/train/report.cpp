#include "mechlens/train/report.h"

#include <cmath>
#include <map>
#include <set>

#include "mechlens/core/io.h"

extern "C" const char mechlens_uplot_js[], mechlens_uplot_js_end[];
extern "C" const char mechlens_uplot_css[], mechlens_uplot_css_end[];

namespace mechlens {

std::string html_escape(const std::string& s) {
  std::string o;
  for (char c : s) {
    switch (c) {
      case '<': o += "&lt;"; break;
      case '>': o += "&gt;"; break;
      case '&': o += "&amp;"; break;
      case '"': o += "&quot;"; break;
      default: o += c;
    }
  }
  return o;
}

void Report::add_summary(const nlohmann::json& summary) {
  parts_.push_back("<h2>summary.json</h2><pre>" + html_escape(summary.dump(2)) + "</pre>");
}

void Report::add_chart(const std::string& title, const std::string& xlabel, bool log_y,
                       const std::vector<std::pair<std::string, Series>>& series) {
  std::set<int64_t> xs;
  for (auto& [n, s] : series)
    for (auto& [x, y] : s) xs.insert(x);
  if (xs.empty()) return;
  std::vector<int64_t> xv(xs.begin(), xs.end());
  std::map<int64_t, size_t> at;
  for (size_t i = 0; i < xv.size(); ++i) at[xv[i]] = i;
  nlohmann::json data = nlohmann::json::array({xv});
  nlohmann::json names = nlohmann::json::array();
  for (auto& [n, s] : series) {
    nlohmann::json col(xv.size(), nullptr);
    for (auto& [x, y] : s)
      if (std::isfinite(y) && (!log_y || y > 0)) col[at[x]] = y;
    data.push_back(col);
    names.push_back(n);
  }
  charts_.push_back({{"title", title}, {"x", xlabel}, {"log", log_y}, {"names", names}, {"data", data}});
  parts_.push_back("<div class=chart id=chart" + std::to_string(charts_.size() - 1) + "></div>");
}

void Report::write(const std::string& path) const {
  std::string js(mechlens_uplot_js, mechlens_uplot_js_end), css(mechlens_uplot_css, mechlens_uplot_css_end);
  std::string h = "<!doctype html><html><head><meta charset=utf-8><title>" + html_escape(title_) + "</title><style>" +
                  css +
                  "body{font-family:sans-serif;margin:2em;max-width:1000px}pre{background:#f4f4f4;padding:1em;"
                  "overflow:auto;max-height:30em}.chart{margin:1.5em 0}</style><script>" +
                  js + "</script></head><body><h1>" + html_escape(title_) + "</h1>\n";
  for (auto& p : parts_) h += p + "\n";
  // Escape "</" so a series name cannot close the script element.
  std::string data = charts_.dump();
  std::string safe;
  for (size_t i = 0; i < data.size(); ++i) {
    if (data[i] == '<' && i + 1 < data.size() && data[i + 1] == '/') safe += "<\\";
    else safe += data[i];
  }
  h += "<script>const charts=" + safe + R"JS(;
const palette=['#1f77b4','#d62728','#2ca02c','#9467bd','#ff7f0e','#17becf','#8c564b','#e377c2'];
charts.forEach((c,i)=>{
  const series=[{label:c.x}].concat(c.names.map((n,j)=>({label:n,stroke:palette[j%palette.length],width:1.5,spanGaps:true,points:{show:c.data[0].length<60}})));
  new uPlot({title:c.title,width:920,height:320,series:series,
    scales:{x:{time:false},y:c.log?{distr:3}:{}},axes:[{label:c.x},{}]},
    c.data,document.getElementById('chart'+i));
});
</script></body></html>
)JS";
  write_file_atomic(path, h);
}

}  // namespace mechlens
