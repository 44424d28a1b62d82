// Reads every thread's Python stack from a PythonProcess: one snapshot.
#pragma once
#include <sys/types.h>
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "code_cache.h"
#include "interpreter.h"
#include "remote_memory.h"

namespace periscope {

struct FrameSample {
  std::shared_ptr<const CodeInfo> code;  // nullptr: unreadable frame
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

class StackWalker {
 public:
  explicit StackWalker(const PythonProcess& proc);
  // One snapshot of every thread. Throws ReaderError only when the process
  // itself is gone or unreadable; torn memory yields truncated stacks.
  std::vector<ThreadSample> sample(bool with_names);
  const CodeCache& code_cache() const { return cache_; }

 private:
  void walk_frames(uint64_t tstate, ThreadSample& out, uint64_t* bootstrap_self);
  int64_t os_tid_for(uint64_t tstate, uint64_t thread_id);
  void calibrate_pthread_tid_offset(const std::vector<uint64_t>& thread_ids);

  const PythonProcess& proc_;
  const PyOffsets& o_;
  SnapshotCache snap_;
  CodeCache cache_;
  int64_t pthread_tid_offset_ = -1;  // offset of the kernel tid inside libc's struct pthread
  std::unordered_map<uint64_t, std::string> names_;  // thread ident -> name
};

inline constexpr int kMaxFrames = 4096;
inline constexpr int kMaxThreads = 4096;

}  // namespace periscope
