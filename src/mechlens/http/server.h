// The explorer behind cpp-httplib: every request becomes an HttpRequest for
// Explorer::handle; oversized bodies and malformed requests that the HTTP layer
// rejects itself still get a JSON error. cpp-httplib stays inside server.cpp (its
// compile flags must not reach the precompiled-header targets).
#pragma once
#include <memory>
#include <string>

namespace mechlens {

class Explorer;

class ExplorerServer {
 public:
  // Binds host:port (port 0: any free port); throws Error when it cannot.
  ExplorerServer(Explorer& explorer, const std::string& host, int port, size_t max_body);
  ~ExplorerServer();
  int port() const;
  // Serves until stop() (from another thread or a signal handler).
  void run();
  void stop();
  bool running() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace mechlens
