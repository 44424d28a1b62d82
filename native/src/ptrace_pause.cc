#include "ptrace_pause.h"

#include <sys/ptrace.h>
#include <sys/wait.h>
#include <cerrno>
#include <cstring>
#include <set>

#include "errors.h"
#include "proc.h"

namespace periscope {

PtracePause::PtracePause(pid_t pid) {
  // Threads may be created while we attach; go round until the set is stable.
  std::set<pid_t> done;
  for (int round = 0; round < 5; ++round) {
    bool added = false;
    for (pid_t tid : list_threads(pid)) {
      if (done.count(tid)) continue;
      done.insert(tid);
      running_[tid] = thread_state(pid, tid) == 'R';
      if (ptrace(PTRACE_SEIZE, tid, nullptr, nullptr) != 0) {
        int err = errno;
        if (err == ESRCH) continue;  // that thread just exited
        for (pid_t t : attached_) ptrace(PTRACE_DETACH, t, nullptr, nullptr);
        attached_.clear();
        if (err == EPERM)
          throw ReaderError(kPermissionDenied, "cannot pause pid " + std::to_string(pid) + " with ptrace (--blocking). " +
                                                   permission_fix_hint());
        throw ReaderError(kPermissionDenied, std::string("ptrace attach failed: ") + strerror(err));
      }
      attached_.push_back(tid);
      added = true;
      if (ptrace(PTRACE_INTERRUPT, tid, nullptr, nullptr) == 0) {
        int status = 0;
        waitpid(tid, &status, __WALL);
      }
    }
    if (!added) break;
  }
  if (attached_.empty())
    throw ReaderError(kProcessExited, "process " + std::to_string(pid) + " exited before it could be paused");
}

PtracePause::~PtracePause() {
  for (pid_t t : attached_) ptrace(PTRACE_DETACH, t, nullptr, nullptr);
}

}  // namespace periscope
