// Reads every thread's Python stack from a PythonProcess: one snapshot.
#pragma once
#include <sys/types.h>
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "code_cache.h"
#include "interpreter.h"
#include "remote_memory.h"

namespace periscope {

struct FrameSample {
  // nullptr: unreadable frame. Owned by the walker's code cache and valid
  // until the walker's next sample().
  const CodeInfo* code = nullptr;
  int line = 0;
};

struct ThreadSample {
  uint64_t thread_id = 0;  // threading ident (pthread_t)
  int64_t os_tid = -1;
  std::string name;
  bool active = false;
  bool owns_gil = false;
  bool truncated = false;  // stack deeper than we walk, or a torn frame
  std::vector<FrameSample> frames;  // innermost first
};

struct AsyncioOffsets;

// One asyncio task (3.14+), from the same snapshot as the threads.
struct TaskSample {
  uint64_t address = 0;      // the task object: its id, as asyncio's own tools show it
  uint64_t thread_id = 0;    // ident of the thread whose task list holds it; 0: the interpreter's list
  bool has_name = false;     // false: the name object was unreadable or neither str nor int
  std::string name;          // a str name, or "Task-N" for the counter asyncio names tasks by
  bool running = false;      // its thread's currently running task
  bool truncated = false;    // coroutine chain torn, cyclic or deeper than kMaxCoroDepth
  std::vector<FrameSample> frames;   // its coroutines, innermost (the awaiting-most) first
  std::vector<uint64_t> awaited_by;  // tasks (of this snapshot) awaiting it
};

class StackWalker {
 public:
  explicit StackWalker(const PythonProcess& proc);
  ~StackWalker();
  // One snapshot of every thread. Throws ReaderError only when the process
  // itself is gone or unreadable; torn memory yields truncated stacks.
  // now_us (monotonic) decides which cached code objects need re-checking;
  // 0 re-checks all of them.
  // running_before: thread states taken before a --blocking pause (nullptr
  // reads them live).
  // The result is reused by the next call: consume it before sampling again.
  const std::vector<ThreadSample>& sample(bool with_names, double now_us = 0,
                                          const std::unordered_map<pid_t, bool>* running_before = nullptr);
  const CodeCache& code_cache() const { return cache_; }
  // After sample(), in the same snapshot: every asyncio task (asyncio_tasks.cc).
  // A task list that is torn, cyclic or longer than kMaxTasks stops the walk
  // and sets *lists_truncated. Frames stay valid like sample()'s.
  const std::vector<TaskSample>& sample_tasks(const AsyncioOffsets& a, bool* lists_truncated);

 private:
  void walk_frames(uint64_t tstate, ThreadSample& out, uint64_t* bootstrap_self, double now_us);
  int64_t os_tid_for(uint64_t tstate, uint64_t thread_id);
  uint64_t first_frame(uint64_t tstate, bool* ok);
  int64_t bytecode_offset(uint64_t frame, uint64_t code, uint64_t instr);
  void calibrate_pthread_tid_offset(const std::vector<uint64_t>& thread_ids);

  const PythonProcess& proc_;
  const Layout& o_;
  const Features& f_;
  SnapshotCache snap_;
  CodeCache cache_;
  bool thread_running(pid_t tid);
  int64_t pthread_tid_offset_ = -1;
  std::unordered_map<pid_t, int> stat_fds_;  // /proc/PID/task/TID/stat kept open: one pread per check  // offset of the kernel tid inside libc's struct pthread
  std::unordered_map<uint64_t, std::string> names_;  // thread ident -> name
  double names_read_at_us_ = -1e18;  // names are re-read about once a second: threads get renamed
  std::string main_thread_name_;      // threading.main_thread().name where it can be read

  // Scratch space reused across samples so the hot path does not allocate.
  struct RawFrame { uint64_t code; int64_t byte_offset; uint64_t localsplus; };
  std::vector<RawFrame> raw_;
  std::vector<uint64_t> codes_;
  std::vector<const CodeInfo*> infos_;
  std::vector<ThreadSample> threads_;
  std::vector<TaskSample> tasks_;
  bool read_task(const AsyncioOffsets& a, uint64_t task, TaskSample& out);
  void read_coro_chain(uint64_t coro, TaskSample& out);
  std::vector<uint64_t> tstates_, idents_;
  std::unordered_set<uint64_t> name_searched_;  // idents whose Thread object was looked for since the last refresh
};

inline constexpr int kMaxFrames = 4096;
inline constexpr int kMaxThreads = 4096;

}  // namespace periscope
