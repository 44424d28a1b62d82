#include "stack_walker.h"

#include <pthread.h>
#include <sys/syscall.h>
#include <fcntl.h>
#include <unistd.h>
#include <cstring>
#include <algorithm>
#include <map>
#include <set>
#include <unordered_set>

#include "errors.h"
#include "proc.h"
#include "thread_names.h"

namespace periscope {

namespace {
// Where our own glibc keeps the kernel tid inside struct pthread; the target
// most likely uses the same libc, so this is the first offset we try.
int64_t own_pthread_tid_offset() {
  static int64_t cached = [] {
    auto self = reinterpret_cast<const int32_t*>(pthread_self());
    int32_t tid = static_cast<int32_t>(syscall(SYS_gettid));
    for (int i = 0; i < 1024 / 4; ++i)
      if (self[i] == tid) return static_cast<int64_t>(i * 4);
    return static_cast<int64_t>(-1);
  }();
  return cached;
}
}  // namespace

StackWalker::StackWalker(const PythonProcess& proc)
    : proc_(proc), o_(proc.layout()), f_(proc.layout().features), snap_(proc.memory()), cache_(proc.layout(), proc.code_type()) {}

StackWalker::~StackWalker() {
  for (auto& [tid, fd] : stat_fds_) close(fd);
}

bool StackWalker::thread_running(pid_t tid) {
  auto it = stat_fds_.find(tid);
  if (it == stat_fds_.end()) {
    if (stat_fds_.size() > 1024) {
      for (auto& [t, fd] : stat_fds_) close(fd);
      stat_fds_.clear();
    }
    std::string path = "/proc/" + std::to_string(proc_.pid()) + "/task/" + std::to_string(tid) + "/stat";
    int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return false;
    it = stat_fds_.emplace(tid, fd).first;
  }
  char buf[512];
  ssize_t n = pread(it->second, buf, sizeof buf - 1, 0);
  if (n <= 0) {
    close(it->second);
    stat_fds_.erase(it);
    return false;
  }
  buf[n] = 0;
  // The command name may contain spaces and ')'; the state follows the last ')'.
  const char* close_paren = strrchr(buf, ')');
  return close_paren && close_paren[1] == ' ' && close_paren[2] == 'R';
}

void StackWalker::calibrate_pthread_tid_offset(const std::vector<uint64_t>& thread_ids) {
  std::vector<pid_t> tids = list_threads(proc_.pid());
  std::set<int32_t> known(tids.begin(), tids.end());
  std::map<int64_t, int> hits;
  std::vector<std::vector<int32_t>> blocks;
  for (uint64_t ident : thread_ids) {
    std::vector<int32_t> block(1024 / 4);
    if (!proc_.memory().read(ident, block.data(), 1024)) continue;
    for (size_t i = 0; i < block.size(); ++i)
      if (known.count(block[i])) hits[static_cast<int64_t>(i * 4)]++;
    blocks.push_back(std::move(block));
  }
  if (blocks.empty()) return;
  int need = static_cast<int>(blocks.size());
  int64_t own = own_pthread_tid_offset();
  if (own >= 0 && hits[own] == need) { pthread_tid_offset_ = own; return; }
  for (auto& [off, n] : hits)
    if (n == need) { pthread_tid_offset_ = off; return; }
}

int64_t StackWalker::os_tid_for(uint64_t tstate, uint64_t thread_id) {
  if (o_.tstate_native_thread_id >= 0) {
    uint64_t v = 0;
    if (snap_.read_value(tstate + o_.tstate_native_thread_id, &v) && v > 0 && v < (1u << 31))
      return static_cast<int64_t>(v);
  }
  if (pthread_tid_offset_ >= 0 && thread_id) {
    int32_t tid = 0;
    if (proc_.memory().read_value(thread_id + pthread_tid_offset_, &tid) && tid > 0) return tid;
  }
  return -1;
}

uint64_t StackWalker::first_frame(uint64_t tstate, bool* ok) {
  switch (f_.traits.frames) {
    case FrameModel::kFrameObjects:
      return snap_.read_ptr(tstate + o_.tstate_frame, ok);
    case FrameModel::kCFrame: {
      uint64_t cframe = snap_.read_ptr(tstate + o_.tstate_cframe, ok);
      return *ok && cframe ? snap_.read_ptr(cframe + o_.cframe_current_frame, ok) : 0;
    }
    case FrameModel::kCurrentFrame:
      return snap_.read_ptr(tstate + o_.tstate_current_frame, ok);
  }
  *ok = false;
  return 0;
}

// Offset in bytes of the instruction a 3.11+ frame executes. Free-threaded
// 3.14+ threads run their own copy of the bytecode (co_tlbc[tlbc_index]);
// copy 0 is the code object's own co_code_adaptive.
int64_t StackWalker::bytecode_offset(uint64_t frame, uint64_t code, uint64_t instr) {
  uint64_t base = code + o_.code_code_adaptive;
  if (f_.per_thread_bytecode) {
    int32_t index = 0;
    bool ok = false;
    if (snap_.read_value(frame + o_.dbg.iframe_tlbc_index, &index) && index > 0) {
      uint64_t array = snap_.read_ptr(code + o_.dbg.code_tlbc, &ok);
      int64_t size = 0;
      // _PyCodeArray: Py_ssize_t size, then char *entries[size].
      if (ok && array && snap_.read_value(array, &size) && index < size && size < (1 << 20)) {
        uint64_t copy = snap_.read_ptr(array + 8 + 8 * static_cast<uint64_t>(index), &ok);
        if (ok && copy) base = copy;
      }
    }
  }
  return static_cast<int64_t>(instr) - static_cast<int64_t>(base);
}

void StackWalker::walk_frames(uint64_t tstate, ThreadSample& out, uint64_t* bootstrap_self, double now_us) {
  bool ok = false;
  const VersionTraits& t = f_.traits;
  const bool frame_objects = t.frames == FrameModel::kFrameObjects;
  uint64_t frame = first_frame(tstate, &ok);
  if (!ok) { out.truncated = true; return; }
  // 3.15 ends every chain at a base frame embedded in the thread state.
  uint64_t base_frame = 0;
  if (t.base_frame_sentinel && o_.dbg.tstate_base_frame >= 0) base_frame = snap_.read_ptr(tstate + o_.dbg.tstate_base_frame, &ok);

  // First the frame chain (addresses only), then every code object in one
  // batch: the chain is a dependent walk, the code checks are not.
  raw_.clear();
  // A cycle means torn memory. Brent's check finds one within twice its
  // length, with no set to fill on every sample.
  uint64_t tortoise = 0;
  int power = 1, steps = 0;
  for (int depth = 0; frame && frame != base_frame && depth < kMaxFrames * 2; ++depth) {
    if (frame == tortoise) { out.truncated = true; break; }
    if (++steps == power) { tortoise = frame; power *= 2; steps = 0; }
    RawFrame rf{};
    uint64_t next;
    if (frame_objects) {
      rf.code = snap_.read_ptr(frame + o_.frame_code, &ok);
      int32_t lasti = 0;
      if (!ok || !snap_.read_value(frame + o_.frame_lasti, &lasti)) { out.truncated = true; break; }
      rf.byte_offset = static_cast<int64_t>(lasti) * t.lasti_unit;
      next = snap_.read_ptr(frame + o_.frame_back, &ok);
      rf.localsplus = frame + o_.frame_localsplus;
    } else {
      uint8_t owner = 0;
      snap_.read_value(frame + o_.iframe_owner, &owner);
      next = snap_.read_ptr(frame + o_.iframe_previous, &ok);
      if (!ok) { out.truncated = true; break; }
      // Shim and entry frames belong to C or to the interpreter itself;
      // Python's own tracebacks never show them.
      if (owner == t.owner_cstack || owner == t.owner_interpreter) { frame = next; continue; }
      rf.code = snap_.read_ptr(frame + o_.iframe_code, &ok) & f_.executable_mask;
      uint64_t instr = snap_.read_ptr(frame + o_.iframe_instr, &ok);
      if (!ok) { out.truncated = true; break; }
      rf.byte_offset = bytecode_offset(frame, rf.code, instr);
      rf.localsplus = frame + o_.iframe_localsplus;
      // A frame still being set up has not executed anything; Python itself
      // hides it from tracebacks and sys._getframe().
      if (rf.byte_offset < 0) { frame = next; continue; }
    }
    if (static_cast<int>(raw_.size()) >= kMaxFrames) { out.truncated = true; break; }
    raw_.push_back(rf);
    frame = next;
  }

  codes_.clear();
  for (auto& rf : raw_) codes_.push_back(rf.code);
  cache_.get_many(snap_, codes_, now_us, infos_);
  out.frames.reserve(raw_.size());
  for (size_t i = 0; i < raw_.size(); ++i) {
    const CodeInfo* info = infos_[i];
    if (!info) {
      if (proc_.memory().process_gone()) proc_.check_alive();
      // 3.14+ frames can run something that is not a code object (a
      // tagged None for an entry frame): skip it rather than misread it.
      if (!frame_objects && cache_.is_other_object(snap_, raw_[i].code)) continue;
      out.truncated = true;
      return;
    }
    out.frames.push_back({info, info->line_at(raw_[i].byte_offset)});
    if (bootstrap_self && info->is_bootstrap_inner)
      *bootstrap_self = snap_.read_ptr(raw_[i].localsplus, &ok) & f_.executable_mask;
  }
}

const std::vector<ThreadSample>& StackWalker::sample(bool with_names, double now_us,
                                                      const std::unordered_map<pid_t, bool>* running_before) {
  snap_.begin_snapshot();
  cache_.begin_sample();
  uint64_t interp = proc_.main_interpreter(snap_);
  if (!interp) { proc_.check_alive(); throw ReaderError(kReadFailed, "could not read the interpreter state"); }
  uint64_t gil = proc_.gil_holder(snap_, interp);
  bool ok = false;
  uint64_t tstate = snap_.read_ptr(interp + o_.interp_tstate_head, &ok);
  if (!ok) { proc_.check_alive(); throw ReaderError(kReadFailed, "could not read the thread list"); }

  // The thread list, and each thread's ident. 3.13 creates a new thread's
  // state before the thread runs; it has no OS thread and no stack yet (ident
  // 0), and Python does not list it either. A repeated state means a torn
  // list (Brent's check, as for frames).
  tstates_.clear();
  idents_.clear();
  uint64_t tortoise = 0;
  int power = 1, steps = 0;
  while (tstate && tstate != tortoise && static_cast<int>(tstates_.size()) < kMaxThreads) {
    if (++steps == power) { tortoise = tstate; power *= 2; steps = 0; }
    uint64_t ident = 0;
    snap_.read_value(tstate + o_.tstate_thread_id, &ident);
    if (ident != 0) {
      tstates_.push_back(tstate);
      idents_.push_back(ident);
    }
    tstate = snap_.read_ptr(tstate + o_.tstate_next, &ok);
    if (!ok) break;
  }

  // Names are read on a dump, for a thread not looked at before, and about
  // once a second while sampling, so a renamed thread shows its new name.
  const bool read_names = with_names || now_us - names_read_at_us_ >= 1e6;
  if (read_names) {
    names_read_at_us_ = now_us;
    name_searched_.clear();
    std::string main_name;
    if (read_main_thread_name(snap_, o_, interp, &main_name)) main_thread_name_ = main_name;
  }
  if (o_.tstate_native_thread_id < 0 && pthread_tid_offset_ < 0) calibrate_pthread_tid_offset(idents_);

  threads_.resize(tstates_.size());
  for (size_t i = 0; i < tstates_.size(); ++i) {
    ThreadSample& t = threads_[i];
    t.thread_id = idents_[i];
    t.frames.clear();
    t.truncated = false;
    t.active = false;
    t.os_tid = os_tid_for(tstates_[i], t.thread_id);
    t.owns_gil = f_.traits.gil == GilSource::kThreadFlag ? proc_.holds_gil(snap_, tstates_[i])
                                                          : gil != 0 && gil == tstates_[i];
    uint64_t bootstrap_self = 0;
    bool search_name = read_names || name_searched_.insert(t.thread_id).second;
    walk_frames(tstates_[i], t, search_name ? &bootstrap_self : nullptr, now_us);
    if (t.os_tid > 0) {
      if (running_before) {
        auto r = running_before->find(static_cast<pid_t>(t.os_tid));
        t.active = r != running_before->end() && r->second;
      } else {
        // The GIL holder is executing Python: no need to ask /proc (one
        // read per thread per sample otherwise).
        t.active = t.owns_gil || thread_running(static_cast<pid_t>(t.os_tid));
      }
    }
    if (bootstrap_self) {
      std::string name;
      if (read_thread_object_name(snap_, o_, bootstrap_self, &name)) names_[t.thread_id] = name;
    }
    auto cached = names_.find(t.thread_id);
    if (cached != names_.end()) t.name = cached->second;
    else if (t.os_tid == proc_.pid()) t.name = main_thread_name_.empty() ? "MainThread" : main_thread_name_;
    else t.name.clear();
  }
  if (proc_.memory().process_gone()) proc_.check_alive();
  return threads_;
}

}  // namespace periscope
