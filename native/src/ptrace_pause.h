// --blocking: stop every thread of the target with ptrace for the duration
// of one snapshot, so the stacks read are consistent with each other.
#pragma once
#include <sys/types.h>
#include <unordered_map>
#include <vector>

namespace periscope {

class PtracePause {
 public:
  // Throws ReaderError (PERMISSION_DENIED / PROCESS_EXITED) on failure.
  explicit PtracePause(pid_t pid);
  ~PtracePause();
  // Which threads were running before we stopped them: once stopped, every
  // thread reads as 't' in /proc, so idle/active must be judged before.
  const std::unordered_map<pid_t, bool>& running_before() const { return running_; }
  PtracePause(const PtracePause&) = delete;
  PtracePause& operator=(const PtracePause&) = delete;

 private:
  std::vector<pid_t> attached_;
  std::unordered_map<pid_t, bool> running_;
};

}  // namespace periscope
