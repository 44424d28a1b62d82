// Continuous sampling on a C++ thread: absolute, jittered deadlines; late
// samples counted; optional following of child processes. JavaScript never
// runs on this thread; it drains finished samples in batches.
#pragma once
#include <sys/types.h>
#include <time.h>
#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "interpreter.h"
#include "stack_walker.h"

namespace periscope {

struct SamplerOptions {
  double rate_hz = 100;
  double duration_s = 0;  // 0: until stop()
  bool subprocesses = false;
  bool blocking = false;
  AttachOptions attach;
};

struct CodeRow { int32_t id; std::string name, filename; int first_line; };
struct ThreadRow { int32_t pid, tid; uint64_t ident; std::string name; };
struct ProcessEvent { int32_t pid; std::string event, cmdline, version; };

// Everything produced since the previous drain. Samples are flat arrays:
// sample i has nframes[i] (code id, line) pairs, innermost first.
struct SampleBatch {
  std::vector<CodeRow> codes;
  std::vector<ThreadRow> threads;
  std::vector<ProcessEvent> processes;
  std::vector<double> time_us;  // wall clock, microseconds since the epoch
  std::vector<int32_t> pid, tid;
  std::vector<uint8_t> flags;  // kFlag*
  std::vector<uint32_t> nframes;
  std::vector<int32_t> frames;  // code id, line, code id, line, ...
  uint64_t samples = 0, late = 0, errors = 0, dropped = 0, ticks = 0;
  std::string last_error_code, last_error_message;
  bool ended = false;
  std::string end_reason;  // "duration", "stopped", "target_exited", "error"
  double sampler_cpu_us = 0;  // CPU of the sampling thread, sleeping and waking included
  double walk_us = 0;         // time spent reading stacks (the part a faster reader shrinks)
};

inline constexpr uint8_t kFlagIdle = 1, kFlagGil = 2, kFlagTruncated = 4;

class Sampler {
 public:
  // Attaches to pid synchronously (throws ReaderError), then samples on its
  // own thread once start() is called.
  Sampler(pid_t pid, const SamplerOptions& opts);
  ~Sampler();
  void start();
  void stop();
  SampleBatch drain();
  const PythonProcess& root() const { return *targets_.at(root_pid_)->proc; }

 private:
  struct Target {
    std::unique_ptr<PythonProcess> proc;
    std::unique_ptr<StackWalker> walker;
    std::map<uint64_t, std::pair<int32_t, std::string>> threads;  // ident -> (tid, name) last reported
  };
  void run();
  void sample_once(double now_us);
  void discover_children();
  void record(int32_t pid, Target& target, const std::vector<ThreadSample>& threads, double now_us);
  int32_t intern(const CodeInfo& info);
  void end(const std::string& reason);

  SamplerOptions opts_;
  pid_t root_pid_;
  std::map<pid_t, std::unique_ptr<Target>> targets_;  // sampler thread only (after start)
  std::map<pid_t, std::string> not_python_;           // pid -> exe when we gave up on it
  std::unordered_map<std::string, int32_t> code_ids_;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> running_{false};

  // The sampling thread's CPU clock, read by drain() (see there).
  clockid_t cpu_clock_{};
  double cpu_start_us_ = 0;
  std::atomic<bool> cpu_clock_ready_{false};
  bool sampler_stopped_ = false;  // guarded by mu_: the final CPU figure is in pending_

  std::mutex mu_;  // guards pending_
  SampleBatch pending_;
  static constexpr size_t kMaxPendingFrames = 8 << 20;
};

}  // namespace periscope
