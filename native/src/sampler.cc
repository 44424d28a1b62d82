#include "sampler.h"

#include <pthread.h>
#include <sys/prctl.h>
#include <time.h>
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <deque>
#include <random>

#include "errors.h"
#include "proc.h"
#include "ptrace_pause.h"

namespace periscope {

namespace {
double mono_us() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}
double wall_us() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}
double clock_us(clockid_t clock) {
  timespec ts;
  if (clock_gettime(clock, &ts) != 0) return 0;
  return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}
void sleep_until_mono(double target_us) {
  timespec ts;
  ts.tv_sec = static_cast<time_t>(target_us / 1e6);
  ts.tv_nsec = static_cast<long>(std::fmod(target_us, 1e6) * 1e3);
  while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, nullptr) == EINTR) {
  }
}
bool exited_code(const std::string& code) { return code == kProcessExited || code == kNoSuchProcess; }

// How often to look for new children: a fork-per-job worker's child may live
// only tens of milliseconds, so this is much faster than a 100 ms rescan.
constexpr double kChildScanUs = 2000;
// Spin before deadlines closer together than this (rates above 2.5 kHz), for
// at most this long.
constexpr double kSpinBelowIntervalUs = 400;
constexpr double kSpinWindowUs = 80;
}  // namespace

Sampler::Sampler(pid_t pid, const SamplerOptions& opts) : opts_(opts), root_pid_(pid) {
  auto t = std::make_unique<Target>();
  t->proc = std::make_unique<PythonProcess>(pid, opts.attach);
  t->walker = std::make_unique<StackWalker>(*t->proc);
  pending_.processes.push_back({pid, "attached", t->proc->cmdline(), t->proc->version().text});
  targets_[pid] = std::move(t);
}

Sampler::~Sampler() { stop(); }

void Sampler::start() {
  if (running_.exchange(true)) return;
  thread_ = std::thread([this] { run(); });
}

void Sampler::stop() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
}

SampleBatch Sampler::drain() {
  // The sampling thread's CPU clock is read from here, at drain time: a
  // clock_gettime on a thread CPU clock is a real system call, too dear to
  // make on every sample.
  double cpu_now = cpu_clock_ready_ ? clock_us(cpu_clock_) : 0;
  std::lock_guard<std::mutex> lock(mu_);
  if (cpu_now > 0 && !sampler_stopped_) pending_.sampler_cpu_us = cpu_now - cpu_start_us_;
  SampleBatch out = std::move(pending_);
  pending_ = SampleBatch{};
  // Counters are cumulative; keep reporting them.
  pending_.samples = out.samples;
  pending_.late = out.late;
  pending_.errors = out.errors;
  pending_.dropped = out.dropped;
  pending_.ticks = out.ticks;
  pending_.sampler_cpu_us = out.sampler_cpu_us;
  pending_.walk_us = out.walk_us;
  pending_.ended = out.ended;
  pending_.end_reason = out.end_reason;
  pending_.last_error_code = out.last_error_code;
  pending_.last_error_message = out.last_error_message;
  return out;
}

void Sampler::end(const std::string& reason) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!pending_.ended) {
    pending_.ended = true;
    pending_.end_reason = reason;
  }
  stop_ = true;
}

int32_t Sampler::intern(const CodeInfo& info) {
  if (info.intern_id >= 0) return info.intern_id;
  std::string key = info.name + '\0' + info.filename + '\0' + std::to_string(info.first_line);
  auto it = code_ids_.find(key);
  int32_t id;
  if (it != code_ids_.end()) {
    id = it->second;
  } else {
    id = static_cast<int32_t>(code_ids_.size());
    code_ids_.emplace(key, id);
    pending_.codes.push_back({id, info.name, info.filename, info.first_line});
  }
  info.intern_id = id;
  return id;
}

void Sampler::record(int32_t pid, Target& target, const std::vector<ThreadSample>& threads, double now_us) {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& t : threads) {
    auto& known = target.threads[t.thread_id];
    if (known.first != t.os_tid || known.second != t.name) {
      known = {static_cast<int32_t>(t.os_tid), t.name};
      pending_.threads.push_back({pid, static_cast<int32_t>(t.os_tid), t.thread_id, t.name});
    }
    if (pending_.frames.size() > kMaxPendingFrames) {
      ++pending_.dropped;  // nobody drains: keep the process bounded, count the loss
      continue;
    }
    pending_.time_us.push_back(now_us);
    pending_.pid.push_back(pid);
    pending_.tid.push_back(static_cast<int32_t>(t.os_tid));
    pending_.flags.push_back((t.active ? 0 : kFlagIdle) | (t.owns_gil ? kFlagGil : 0) | (t.truncated ? kFlagTruncated : 0));
    pending_.nframes.push_back(static_cast<uint32_t>(t.frames.size()));
    for (auto& f : t.frames) {
      pending_.frames.push_back(f.code ? intern(*f.code) : -1);
      pending_.frames.push_back(f.line);
    }
  }
  ++pending_.samples;
}

void Sampler::discover_children() {
  std::set<pid_t> alive;
  std::deque<pid_t> queue{root_pid_};
  while (!queue.empty() && alive.size() < 4096) {
    pid_t p = queue.front();
    queue.pop_front();
    for (pid_t c : list_children(p)) {
      if (alive.insert(c).second) queue.push_back(c);
    }
  }
  for (pid_t c : alive) {
    if (targets_.count(c)) continue;
    std::string exe = read_exe_path(c);
    auto np = not_python_.find(c);
    if (np != not_python_.end() && np->second == exe) continue;  // unchanged since we gave up
    std::unique_ptr<PythonProcess> proc;
    // A fork of a process we already read shares its layout: no ELF parsing.
    pid_t parent = 0;
    {
      std::string stat;
      FILE* f = fopen(("/proc/" + std::to_string(c) + "/stat").c_str(), "r");
      if (f) {
        char buf[512];
        size_t n = fread(buf, 1, sizeof buf - 1, f);
        buf[n] = 0;
        fclose(f);
        const char* cp = strrchr(buf, ')');
        if (cp) sscanf(cp + 2, "%*c %d", &parent);
      }
    }
    auto pt = targets_.find(parent);
    try {
      if (pt != targets_.end()) {
        try {
          proc = std::make_unique<PythonProcess>(*pt->second->proc, c);
        } catch (const ReaderError&) {
          proc.reset();
        }
      }
      if (!proc) proc = std::make_unique<PythonProcess>(c, opts_.attach);
    } catch (const ReaderError& e) {
      if (!exited_code(e.code())) not_python_[c] = exe;
      continue;
    }
    auto t = std::make_unique<Target>();
    t->walker = std::make_unique<StackWalker>(*proc);
    t->proc = std::move(proc);
    {
      std::lock_guard<std::mutex> lock(mu_);
      pending_.processes.push_back({c, "attached", t->proc->cmdline(), t->proc->version().text});
    }
    targets_[c] = std::move(t);
  }
  for (auto it = not_python_.begin(); it != not_python_.end();)
    it = alive.count(it->first) ? std::next(it) : not_python_.erase(it);
}

void Sampler::sample_once(double now_us) {
  for (auto it = targets_.begin(); it != targets_.end();) {
    pid_t pid = it->first;
    Target& target = *it->second;
    try {
      std::unique_ptr<PtracePause> pause;
      if (opts_.blocking) pause = std::make_unique<PtracePause>(pid);
      const auto& threads = target.walker->sample(false, now_us, pause ? &pause->running_before() : nullptr);
      pause.reset();
      record(pid, target, threads, now_us);
      ++it;
    } catch (const ReaderError& e) {
      if (exited_code(e.code())) {
        {
          std::lock_guard<std::mutex> lock(mu_);
          pending_.processes.push_back({pid, "exited", target.proc->cmdline(), target.proc->version().text});
        }
        if (pid == root_pid_) {
          end("target_exited");
          return;
        }
        it = targets_.erase(it);
        continue;
      }
      std::lock_guard<std::mutex> lock(mu_);
      ++pending_.errors;
      pending_.last_error_code = e.code();
      pending_.last_error_message = e.what();
      if (e.code() == kPermissionDenied && pid == root_pid_) {
        stop_ = true;
        pending_.ended = true;
        pending_.end_reason = "error";
        return;
      }
      ++it;
    }
  }
}

void Sampler::run() {
  const double interval = 1e6 / std::max(0.1, opts_.rate_hz);
  // The kernel may wake a sleeper up to its timer slack late (50 µs by
  // default): keep it well under the interval.
  prctl(PR_SET_TIMERSLACK, static_cast<unsigned long>(std::clamp(interval * 1000 / 20, 1000.0, 50000.0)), 0, 0, 0);
  // Above a few kHz a wake-up from sleep arrives too late too often (tens of
  // µs on a virtual machine): sleep until shortly before the deadline, then
  // spin. This costs CPU (the time spun), which the CPU figures include.
  const double spin_us = interval < kSpinBelowIntervalUs ? std::min(interval, kSpinWindowUs) : 0;
  std::mt19937_64 rng(std::random_device{}());
  std::uniform_real_distribution<double> jitter(-0.5, 0.5);
  const double start = mono_us();
  const double wall_offset = wall_us() - start;
  const double end_at = opts_.duration_s > 0 ? start + opts_.duration_s * 1e6 : 0;
  // Read from drain(); the thread's clock outlives it until join.
  pthread_getcpuclockid(pthread_self(), &cpu_clock_);
  cpu_start_us_ = clock_us(cpu_clock_);
  cpu_clock_ready_ = true;
  double next_scan = start;
  uint64_t k = 0;
  while (!stop_) {
    // Deadlines sit on a fixed grid plus jitter: the average rate is exact
    // and samples never lock into step with periodic work in the target.
    double deadline = start + k * interval + (k ? jitter(rng) * interval * 0.5 : 0);
    if (opts_.subprocesses) {
      while (!stop_ && next_scan < deadline) {
        sleep_until_mono(next_scan);
        discover_children();
        next_scan = std::max(next_scan + kChildScanUs, mono_us());
      }
    }
    if (spin_us > 0) {
      if (deadline - spin_us > mono_us()) sleep_until_mono(deadline - spin_us);
      while (!stop_ && mono_us() < deadline) {
      }
    } else {
      sleep_until_mono(deadline);
    }
    if (stop_) break;
    double now = mono_us();
    if (end_at && now >= end_at) { end("duration"); break; }
    bool late = now - deadline > interval * 0.5;
    sample_once(now + wall_offset);
    double walked = mono_us() - now;
    {
      std::lock_guard<std::mutex> lock(mu_);
      pending_.walk_us += walked;
      ++pending_.ticks;
      if (late) ++pending_.late;
    }
    ++k;
    // Fell behind by whole intervals: skip those slots (they count as late)
    // rather than firing a burst of catch-up samples.
    double after = mono_us();
    uint64_t due = static_cast<uint64_t>((after - start) / interval);
    if (due > k) {
      std::lock_guard<std::mutex> lock(mu_);
      pending_.late += due - k;
      pending_.ticks += due - k;
      k = due;
    }
  }
  double cpu_end = clock_us(cpu_clock_);
  std::lock_guard<std::mutex> lock(mu_);
  pending_.sampler_cpu_us = cpu_end - cpu_start_us_;
  sampler_stopped_ = true;
  if (!pending_.ended) {
    pending_.ended = true;
    pending_.end_reason = "stopped";
  }
}

}  // namespace periscope
