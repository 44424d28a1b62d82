#include "asyncio_tasks.h"

#include <algorithm>
#include <cstring>
#include <set>
#include <unordered_set>

#include "elf.h"
#include "errors.h"
#include "proc.h"
#include "python_strings.h"
#include "stack_walker.h"

namespace periscope {

namespace {

constexpr size_t kAsyncioWords = 13;         // the 3.14/3.15 layout: three sized sections
constexpr uint64_t kMaxTaskObject = 4096;    // a TaskObj is ~170 bytes
constexpr uint64_t kMaxStateStruct = 16ULL << 20;
constexpr uint64_t kTpflagsLongSubclass = 1ULL << 24;
constexpr uint64_t kTpflagsUnicodeSubclass = 1ULL << 28;
constexpr uint8_t kFrameOwnedByGenerator = 1;  // enum _frameowner, 3.11+

std::string base_name(const std::string& p) {
  auto s = p.rfind('/');
  return s == std::string::npos ? p : p.substr(s + 1);
}

}  // namespace

bool parse_asyncio_offsets(const uint64_t* w, size_t count, AsyncioOffsets* out, std::string* why) {
  auto refuse = [&](const std::string& r) { *why = "AsyncioDebug: " + r; return false; };
  if (count < kAsyncioWords) return refuse("the section holds " + std::to_string(count) + " words, fewer than the 13 of 3.14/3.15");
  // asyncio_task_object, asyncio_interpreter_state, asyncio_thread_state: each its size, then its fields.
  uint64_t task_size = w[0], interp_size = w[7], tstate_size = w[9];
  if (task_size < 16 || task_size > kMaxTaskObject) return refuse("implausible task object size " + std::to_string(task_size));
  if (interp_size < 64 || interp_size > kMaxStateStruct) return refuse("implausible interpreter state size " + std::to_string(interp_size));
  if (tstate_size < 64 || tstate_size > kMaxStateStruct) return refuse("implausible thread state size " + std::to_string(tstate_size));
  std::string err;
  auto member = [&](const char* name, uint64_t v, uint64_t width, uint64_t size) -> int64_t {
    if (!err.empty()) return -1;
    if (v + width > size || v + width < v) err = std::string(name) + " offset " + std::to_string(v) + " lies outside its " + std::to_string(size) + "-byte struct";
    else if (v % std::min<uint64_t>(width, 8) != 0) err = std::string(name) + " offset " + std::to_string(v) + " is not aligned";
    return err.empty() ? static_cast<int64_t>(v) : -1;
  };
  AsyncioOffsets a;
  a.task_size = static_cast<int64_t>(task_size);
  a.task_name = member("task_name", w[1], 8, task_size);
  a.task_awaited_by = member("task_awaited_by", w[2], 8, task_size);
  a.task_is_task = member("task_is_task", w[3], 1, task_size);
  a.task_awaited_by_is_set = member("task_awaited_by_is_set", w[4], 1, task_size);
  a.task_coro = member("task_coro", w[5], 8, task_size);
  a.task_node = member("task_node", w[6], 16, task_size);  // struct llist_node {next, prev}
  a.interp_tasks_head = member("asyncio_interpreter_state.asyncio_tasks_head", w[8], 16, interp_size);
  a.tstate_running_loop = member("asyncio_running_loop", w[10], 8, tstate_size);
  a.tstate_running_task = member("asyncio_running_task", w[11], 8, tstate_size);
  a.tstate_tasks_head = member("asyncio_thread_state.asyncio_tasks_head", w[12], 16, tstate_size);
  if (!err.empty()) return refuse(err);
  *out = a;
  return true;
}

bool find_asyncio_offsets(const PythonProcess& proc, AsyncioOffsets* out, std::string* why) {
  const Layout& o = proc.layout();
  const PythonVersion& v = proc.version();
  if (v.major < 3 || (v.major == 3 && v.minor < 14)) {
    *why = "asyncio task introspection needs Python 3.14 or newer; this is Python " + v.text;
    return false;
  }
  if (!o.asyncio_error.empty()) { *why = o.asyncio_error; return false; }
  std::vector<Mapping> maps = read_maps(proc.pid());
  // The section is in the interpreter itself when _asyncio is built in
  // (3.15 on Debian), else in the _asyncio extension once it is imported.
  std::vector<std::pair<std::string, uint64_t>> files;
  for (const Mapping& m : maps) {
    if (m.offset != 0 || m.path.empty() || m.path[0] != '/') continue;
    std::string b = base_name(m.path);
    bool wanted = m.path == proc.binary_path() || m.path == proc.executable() || b.rfind("_asyncio", 0) == 0 ||
                  b.rfind("libpython", 0) == 0;
    if (!wanted) continue;
    bool seen = false;
    for (auto& f : files) seen = seen || f.first == m.path;
    if (!seen) files.emplace_back(m.path, m.start);
  }
  for (auto& [path, load_start] : files) {
    ElfFile elf;
    try {
      elf = ElfFile::open(target_file_path(proc.pid(), path));
    } catch (const ReaderError&) {
      continue;
    }
    const ElfSection* s = elf.section(".AsyncioDebug");
    if (!s) s = elf.section("AsyncioDebug");
    if (!s) continue;
    if (s->size < kAsyncioWords * 8 || s->size > 4096) {
      *why = "AsyncioDebug section of " + path + " has an implausible size " + std::to_string(s->size);
      return false;
    }
    uint64_t bias = elf.is_shared_object() ? load_start - (elf.first_load_vaddr() & ~0xfffULL) : 0;
    uint64_t words[kAsyncioWords];
    if (!proc.memory().read(s->addr + bias, words, sizeof words)) {
      proc.check_alive();
      *why = "the AsyncioDebug section of " + path + " could not be read";
      return false;
    }
    return parse_asyncio_offsets(words, kAsyncioWords, out, why);
  }
  *why = "no AsyncioDebug section: the target has not imported asyncio (or its Python predates 3.14)";
  return false;
}

// One coroutine chain: the task's coroutine, then whatever each suspended
// coroutine awaits, as long as that is a coroutine of the same type (a
// future or other awaitable ends the chain).
void StackWalker::read_coro_chain(uint64_t coro, TaskSample& out) {
  const Layout& o = o_;
  const VersionTraits& t = f_.traits;
  raw_.clear();
  std::unordered_set<uint64_t> seen;
  uint64_t coro_type = 0;
  bool ok = false;
  for (int depth = 0; coro; ++depth) {
    if (depth >= kMaxCoroDepth || !seen.insert(coro).second || (coro & 7)) { out.truncated = true; break; }
    int8_t state = 0;
    uint64_t type = snap_.read_ptr(coro + o.object_type, &ok);
    if (!ok || !snap_.read_value(coro + o.dbg.gen_frame_state, &state)) { out.truncated = true; break; }
    if (depth == 0) coro_type = type;
    else if (type != coro_type) break;
    if (state >= t.gen_finished) break;
    uint64_t frame = coro + o.dbg.gen_iframe;
    RawFrame rf{};
    rf.code = snap_.read_ptr(frame + o.iframe_code, &ok) & f_.executable_mask;
    uint64_t instr = ok ? snap_.read_ptr(frame + o.iframe_instr, &ok) : 0;
    if (!ok || !rf.code) { out.truncated = true; break; }
    // A coroutine not started yet points just before its first instruction.
    rf.byte_offset = std::max<int64_t>(0, bytecode_offset(frame, rf.code, instr));
    raw_.push_back(rf);
    if (state < t.gen_yield_from_lo || state > t.gen_yield_from_hi) break;
    // Awaiting: the awaited object sits on the frame's value stack, a
    // tagged reference one word below the saved stack pointer (3.14) or two,
    // under the slot of the value being sent (3.15).
    uint8_t owner = 0;
    if (!snap_.read_value(frame + o.iframe_owner, &owner) || owner != kFrameOwnedByGenerator) break;
    uint64_t sp = snap_.read_ptr(frame + o.dbg.iframe_stackpointer, &ok) & f_.executable_mask;
    const uint64_t below = 8ULL * static_cast<uint64_t>(t.gen_awaited_below_top);
    if (!ok || below == 0 || sp < frame + o.iframe_localsplus + below || sp - frame > (1u << 20)) { out.truncated = true; break; }
    coro = snap_.read_ptr(sp - below, &ok) & f_.executable_mask;
    if (!ok) { out.truncated = true; break; }
  }
  codes_.clear();
  for (auto& rf : raw_) codes_.push_back(rf.code);
  cache_.get_many(snap_, codes_, 0, infos_);
  for (size_t i = 0; i < raw_.size(); ++i) {
    const CodeInfo* info = infos_[i];
    if (!info) {
      if (proc_.memory().process_gone()) proc_.check_alive();
      out.truncated = true;
      break;
    }
    out.frames.push_back({info, info->line_at(raw_[i].byte_offset)});
  }
  std::reverse(out.frames.begin(), out.frames.end());
}

bool StackWalker::read_task(const AsyncioOffsets& a, uint64_t task, TaskSample& out) {
  const Layout& o = o_;
  uint8_t obj[kMaxTaskObject];
  if (!snap_.read(task, obj, static_cast<size_t>(a.task_size))) return false;
  auto word = [&](int64_t off) { uint64_t v; std::memcpy(&v, obj + off, 8); return v; };
  if (obj[a.task_is_task] != 1) return false;
  out.address = task;

  // The name: a str, or the int of asyncio's task counter ("Task-N").
  uint64_t name = word(a.task_name) & f_.executable_mask;
  bool ok = false;
  uint64_t type = name ? snap_.read_ptr(name + o.object_type, &ok) : 0;
  uint64_t flags = ok && type ? snap_.read_ptr(type + o.type_flags, &ok) : 0;
  if (ok && (flags & kTpflagsUnicodeSubclass)) {
    out.has_name = read_py_string(snap_, o, name, &out.name);
  } else if (ok && (flags & kTpflagsLongSubclass) && o.dbg.long_tag >= 0) {
    uint64_t tag = 0;
    uint64_t ndigits = snap_.read_value(name + o.dbg.long_tag, &tag) ? tag >> 3 : 99;
    uint32_t digits[2] = {0, 0};
    if (ndigits <= 2 && snap_.read(name + o.dbg.long_digits, digits, ndigits * 4) && digits[0] < (1u << 30) &&
        digits[1] < (1u << 30)) {
      uint64_t v = digits[0] | (static_cast<uint64_t>(digits[1]) << 30);
      out.name = std::string("Task-") + ((tag & 3) == 2 ? "-" : "") + std::to_string(v);
      out.has_name = true;
    }
  }
  if (!out.has_name) out.name.clear();

  uint64_t coro = word(a.task_coro) & f_.executable_mask;
  if (coro) read_coro_chain(coro, out);

  // Who awaits it: one future, or a set of them (pointers to non-task
  // futures, and deleted set slots, are kept out by the caller).
  uint64_t ab = word(a.task_awaited_by) & f_.executable_mask;
  if (!ab) return true;
  if (!obj[a.task_awaited_by_is_set]) { out.awaited_by.push_back(ab); return true; }
  int64_t used = 0, mask = 0;
  uint64_t table = 0;
  if (!snap_.read_value(ab + o.dbg.set_used, &used) || !snap_.read_value(ab + o.dbg.set_mask, &mask) ||
      !snap_.read_value(ab + o.dbg.set_table, &table)) { out.truncated = true; return true; }
  if (mask < 0 || mask + 1 > kMaxAwaitedBySet || ((mask + 1) & mask) != 0 || used < 0 || used > mask + 1 || !table) {
    out.truncated = true;
    return true;
  }
  // setentry: {PyObject *key; Py_hash_t hash;}
  std::vector<uint64_t> entries(static_cast<size_t>(mask + 1) * 2);
  if (!proc_.memory().read(table, entries.data(), entries.size() * 8)) { out.truncated = true; return true; }
  for (int64_t i = 0; i <= mask && static_cast<int64_t>(out.awaited_by.size()) < used; ++i)
    if (uint64_t key = entries[static_cast<size_t>(i) * 2]) out.awaited_by.push_back(key);
  return true;
}

const std::vector<TaskSample>& StackWalker::sample_tasks(const AsyncioOffsets& a, bool* lists_truncated) {
  tasks_.clear();
  *lists_truncated = false;
  const Layout& o = o_;
  if (o.dbg.llist_next < 0 || o.dbg.gen_iframe < 0) return tasks_;
  uint64_t interp = proc_.main_interpreter(snap_);
  if (!interp) { proc_.check_alive(); throw ReaderError(kReadFailed, "could not read the interpreter state"); }

  // Every list: each thread's (the threads of the last sample()), then the
  // interpreter's. A list is circular through its head; a node seen twice
  // anywhere else, a null or misaligned link, ends the walk.
  struct Listed { uint64_t task, thread_id; };
  std::vector<Listed> listed;
  std::unordered_set<uint64_t> seen;
  std::vector<std::pair<uint64_t, uint64_t>> heads;  // (head address, thread ident)
  std::unordered_set<uint64_t> running;
  bool ok = false;
  for (size_t i = 0; i < tstates_.size(); ++i) {
    heads.emplace_back(tstates_[i] + a.tstate_tasks_head, idents_[i]);
    uint64_t loop = snap_.read_ptr(tstates_[i] + a.tstate_running_loop, &ok);
    uint64_t task = ok && loop ? snap_.read_ptr(tstates_[i] + a.tstate_running_task, &ok) : 0;
    if (ok && task) running.insert(task);
  }
  heads.emplace_back(interp + a.interp_tasks_head, 0);
  for (auto& [head, ident] : heads) {
    uint64_t node = snap_.read_ptr(head + o.dbg.llist_next, &ok);
    if (!ok) { *lists_truncated = true; continue; }
    if (node == 0) continue;  // a thread state whose list was never initialised
    while (node != head) {
      if (!ok || !node || (node & 7) || static_cast<int>(listed.size()) >= kMaxTasks || !seen.insert(node).second) {
        *lists_truncated = true;
        break;
      }
      listed.push_back({node - static_cast<uint64_t>(a.task_node), ident});
      node = snap_.read_ptr(node + o.dbg.llist_next, &ok);
    }
  }

  std::set<uint64_t> known;
  for (const Listed& l : listed) {
    TaskSample t;
    t.thread_id = l.thread_id;
    if (!read_task(a, l.task, t)) continue;
    t.running = running.count(l.task) > 0;
    known.insert(l.task);
    tasks_.push_back(std::move(t));
  }
  // Only tasks of this snapshot count as awaiters: a plain future awaiting
  // a task has no stack of its own, and a deleted set slot points at a dummy.
  for (TaskSample& t : tasks_) {
    auto& ab = t.awaited_by;
    ab.erase(std::remove_if(ab.begin(), ab.end(), [&](uint64_t p) { return !known.count(p) || p == t.address; }), ab.end());
    std::sort(ab.begin(), ab.end());
    ab.erase(std::unique(ab.begin(), ab.end()), ab.end());
  }
  if (proc_.memory().process_gone()) proc_.check_alive();
  return tasks_;
}

}  // namespace periscope
