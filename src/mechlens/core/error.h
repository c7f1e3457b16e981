// One error type for everything that is the user's fault (bad file, bad argument).
// The CLI prints what() on one line and exits with status 2.
#pragma once
#include <stdexcept>
#include <string>

namespace mechlens {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A file or folder that is not there (Python: FileNotFoundError).
class NotFoundError : public Error {
 public:
  using Error::Error;
};

// Throws Error("<where>: <what>").
[[noreturn]] inline void fail(const std::string& where, const std::string& what) {
  throw Error(where.empty() ? what : where + ": " + what);
}
[[noreturn]] inline void fail_not_found(const std::string& where, const std::string& what) {
  throw NotFoundError(where.empty() ? what : where + ": " + what);
}

}  // namespace mechlens
