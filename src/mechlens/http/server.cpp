#include "mechlens/http/server.h"

#include <httplib.h>

#include "mechlens/core/error.h"
#include "mechlens/explore/explorer.h"

namespace mechlens {

struct ExplorerServer::Impl {
  httplib::Server svr;
  int port = 0;
};

namespace {
std::string json_error(const std::string& msg) {
  return nlohmann::json{{"error", msg}}.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}
}  // namespace

ExplorerServer::ExplorerServer(Explorer& explorer, const std::string& host, int port, size_t max_body)
    : impl_(std::make_unique<Impl>()) {
  auto& svr = impl_->svr;
  svr.set_payload_max_length(max_body);
  svr.set_read_timeout(10, 0);
  svr.set_write_timeout(10, 0);
  auto handler = [&explorer](const httplib::Request& req, httplib::Response& res) {
    HttpRequest r;
    r.method = req.method, r.path = req.path, r.target = req.target, r.body = req.body;
    for (const auto& [k, v] : req.params) r.query.emplace(k, v);
    HttpReply out = explorer.handle(r);
    res.status = out.status;
    res.set_header("Cache-Control", "no-store");
    res.set_header("X-Content-Type-Options", "nosniff");
    res.set_content(out.body, out.content_type.c_str());
  };
  svr.Get(".*", handler);
  svr.Post(".*", handler);
  svr.Put(".*", handler);
  svr.Delete(".*", handler);
  svr.Patch(".*", handler);
  svr.Options(".*", handler);
  // What cpp-httplib rejects before routing (413 for a body over the limit, 400 for a
  // malformed request line, ...) gets a JSON error too.
  svr.set_error_handler([](const httplib::Request&, httplib::Response& res) {
    if (!res.body.empty()) return;
    std::string msg = res.status == 413   ? "request body too large"
                      : res.status == 414 ? "request URI too long"
                      : res.status == 400 ? "malformed HTTP request"
                                          : "HTTP error " + std::to_string(res.status);
    res.set_content(json_error(msg), "application/json");
  });
  svr.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
    std::string msg = "internal error";
    try {
      std::rethrow_exception(ep);
    } catch (const std::exception& e) {
      msg += std::string(": ") + e.what();
    } catch (...) {
    }
    res.status = 500;
    res.set_content(json_error(msg), "application/json");
  });
  impl_->port = port == 0 ? svr.bind_to_any_port(host) : (svr.bind_to_port(host, port) ? port : -1);
  if (impl_->port <= 0) fail(host + ":" + std::to_string(port), "cannot listen there (in use, or not an address of this machine)");
}

ExplorerServer::~ExplorerServer() { stop(); }
int ExplorerServer::port() const { return impl_->port; }
void ExplorerServer::run() { impl_->svr.listen_after_bind(); }
bool ExplorerServer::running() const { return impl_->svr.is_running(); }
void ExplorerServer::stop() {
  if (impl_->svr.is_running()) impl_->svr.stop();
}

}  // namespace mechlens
