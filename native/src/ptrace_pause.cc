#include "ptrace_pause.h"

#include <sys/ptrace.h>
#include <sys/wait.h>
#include <cerrno>
#include <cstring>
#include <unistd.h>
#include <set>

#include "errors.h"
#include "proc.h"

namespace periscope {

namespace {
// Waits for the interrupted thread to stop, but never forever: if the target
// is a child of this process, the runtime's own child reaper may collect the
// stop notification first, so /proc is checked too and the wait is bounded.
void wait_stopped(pid_t pid, pid_t tid) {
  for (int i = 0; i < 2000; ++i) {  // ~100 ms at most
    int status = 0;
    pid_t r = waitpid(tid, &status, __WALL | WNOHANG);
    if (r == tid) return;
    char st = thread_state(pid, tid);
    if (st == 't' || st == 'T' || st == 0) return;
    usleep(50);
  }
}
}  // namespace

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
      if (ptrace(PTRACE_INTERRUPT, tid, nullptr, nullptr) == 0) wait_stopped(pid, tid);
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
