// Reader failures carry a stable code (surfaced to JS as error.code) and a
// message that names the cause and the fix.
#pragma once
#include <stdexcept>
#include <string>

namespace periscope {

class ReaderError : public std::runtime_error {
 public:
  ReaderError(std::string code, const std::string& message)
      : std::runtime_error(message), code_(std::move(code)) {}
  const std::string& code() const { return code_; }

 private:
  std::string code_;
};

// Stable codes; the agent maps them to user-facing text and exit status.
inline constexpr const char* kNoSuchProcess = "NO_SUCH_PROCESS";
inline constexpr const char* kNotPython = "NOT_PYTHON";
inline constexpr const char* kPermissionDenied = "PERMISSION_DENIED";
inline constexpr const char* kUnsupportedVersion = "UNSUPPORTED_VERSION";
inline constexpr const char* kProcessExited = "PROCESS_EXITED";
inline constexpr const char* kReadFailed = "READ_FAILED";
inline constexpr const char* kMemoryUnreadable = "MEMORY_UNREADABLE";
inline constexpr const char* kBadArgument = "BAD_ARGUMENT";

std::string permission_fix_hint();

}  // namespace periscope
