// The errors the engine reports to its caller. The addon maps each code to the TypeScript
// error class registered for it (src/errors.ts).
#pragma once

#include <stdexcept>
#include <string>

namespace rtphub {

enum class ErrorCode { InvalidArgument, PortsExhausted, NotFound, Closed, RecordFormat, System };

class EngineError : public std::runtime_error {
 public:
  EngineError(ErrorCode code, const std::string& message) : std::runtime_error(message), code_(code) {}
  ErrorCode code() const { return code_; }

 private:
  ErrorCode code_;
};

}  // namespace rtphub
