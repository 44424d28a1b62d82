// --blocking: stop every thread of the target with ptrace for the duration
// of one snapshot, so the stacks read are consistent with each other.
#pragma once
#include <sys/types.h>
#include <vector>

namespace periscope {

class PtracePause {
 public:
  // Throws ReaderError (PERMISSION_DENIED / PROCESS_EXITED) on failure.
  explicit PtracePause(pid_t pid);
  ~PtracePause();
  PtracePause(const PtracePause&) = delete;
  PtracePause& operator=(const PtracePause&) = delete;

 private:
  std::vector<pid_t> attached_;
};

}  // namespace periscope
