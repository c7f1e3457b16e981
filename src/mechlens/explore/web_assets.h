// The explorer's pages, scripts and styles (src/mechlens/explore/web/, plus uPlot from
// npm), embedded in the binary at build time: nothing is fetched at run time.
#pragma once
#include <string>
#include <vector>

namespace mechlens {

struct WebAsset {
  std::string name;  // file name, e.g. "neuron.html"
  const char* begin;
  const char* end;
  std::string content_type;
};

const WebAsset* find_web_asset(const std::string& name);  // nullptr when absent

}  // namespace mechlens
