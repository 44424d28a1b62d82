#include "interpreter.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <regex>
#include <set>
#include <vector>

#include "arch_offsets.h"
#include "debug_offsets.h"
#include "elf.h"
#include "errors.h"
#include "proc.h"

namespace periscope {

std::string permission_fix_hint() {
  return "Periscope reads the target's memory with process_vm_readv (or /proc/PID/mem), which needs ptrace permission over it. "
         "Run the agent as the same user as the target (or root). In Docker, start the container with "
         "--cap-add SYS_PTRACE; in Kubernetes add SYS_PTRACE to securityContext.capabilities.add. "
         "If /proc/sys/kernel/yama/ptrace_scope is 1 or more, run as root or set it to 0.";
}

namespace {

struct Candidate {
  std::string path;         // path as the target sees it
  uint64_t load_start = 0;  // start of the offset-0 mapping
};

std::string base_name(const std::string& p) {
  auto s = p.rfind('/');
  return s == std::string::npos ? p : p.substr(s + 1);
}

bool is_libpython(const std::string& path) { return base_name(path).rfind("libpython", 0) == 0; }

// "python3.11", "libpython3.8.so.1.0", "libpython3.7m.so" -> 3, 11
bool version_from_name(const std::string& path, int* major, int* minor) {
  static const std::regex re("python([23])\\.([0-9]{1,2})");
  std::smatch m;
  std::string name = base_name(path);
  if (!std::regex_search(name, m, re)) return false;
  *major = std::stoi(m[1]);
  *minor = std::stoi(m[2]);
  return true;
}

bool rw_mapping_contains(const std::vector<Mapping>& maps, uint64_t addr) {
  for (auto& m : maps)
    if (addr >= m.start && addr + 8 <= m.end && m.perms.size() >= 2 && m.perms[0] == 'r' && m.perms[1] == 'w')
      return true;
  return false;
}

// PY_VERSION ("3.8.18") as a whole NUL-terminated string in .rodata.
std::string version_string_in(const std::string& rodata, int major, int minor) {
  std::string prefix = std::to_string(major) + "." + std::to_string(minor) + ".";
  size_t pos = 0;
  while ((pos = rodata.find(prefix, pos)) != std::string::npos) {
    // The linker may merge "3.8.18" into the tail of a longer string such
    // as a build path, so accept any start that is not inside a number.
    bool starts = pos == 0 || !(isdigit(static_cast<unsigned char>(rodata[pos - 1])) || rodata[pos - 1] == '.');
    size_t end = rodata.find('\0', pos);
    if (starts && end != std::string::npos && end - pos <= 16) {
      std::string s = rodata.substr(pos, end - pos);
      if (std::regex_match(s, std::regex("[0-9]+\\.[0-9]+\\.[0-9]+([abrc+][0-9a-z+]*)?"))) return s;
    }
    pos += prefix.size();
  }
  return {};
}

}  // namespace

PythonProcess::PythonProcess(pid_t pid, const AttachOptions& opts) : pid_(pid), mem_(pid) {
  if (!process_exists(pid))
    throw ReaderError(kNoSuchProcess, "no process with pid " + std::to_string(pid) +
                                          " (check the pid with `ps` or `periscope` process listing)");
  cmdline_ = read_cmdline(pid);
  exe_ = read_exe_path(pid);
  locate(opts);
}

PythonProcess::PythonProcess(const PythonProcess& parent, pid_t child)
    : pid_(child),
      mem_(child),
      layout_(parent.layout_),
      version_(parent.version_),
      binary_(parent.binary_),
      locate_method_(parent.locate_method_),
      runtime_(parent.runtime_),
      interp_head_addr_(parent.interp_head_addr_),
      tstate_current_addr_(parent.tstate_current_addr_),
      code_type_(parent.code_type_) {
  cmdline_ = read_cmdline(child);
  exe_ = read_exe_path(child);
  if (exe_ != parent.exe_ || !validate_interp_head(interp_head_addr_)) {
    check_alive();
    throw ReaderError(kNotPython, "pid " + std::to_string(child) + " does not share its parent's interpreter");
  }
}

void PythonProcess::check_alive() const {
  if (mem_.permission_denied())
    throw ReaderError(kPermissionDenied, "permission denied reading the memory of pid " + std::to_string(pid_) + ". " +
                                             permission_fix_hint());
  if (mem_.unreadable()) throw ReaderError(kMemoryUnreadable, mem_.unreadable_reason());
  if (mem_.process_gone() || !process_exists(pid_))
    throw ReaderError(kProcessExited, "process " + std::to_string(pid_) + " exited while it was being read");
}

uint64_t PythonProcess::main_interpreter(SnapshotCache& snap) const {
  bool ok = false;
  uint64_t v = snap.read_ptr(interp_head_addr_, &ok);
  return ok ? v : 0;
}

uint64_t PythonProcess::gil_holder(SnapshotCache& snap, uint64_t interp) const {
  bool ok = false;
  const Layout& o = layout_;
  switch (o.features.traits.gil) {
    case GilSource::kThreadStateGlobal:
      return tstate_current_addr_ ? snap.read_ptr(tstate_current_addr_, &ok) : 0;
    case GilSource::kRuntimeGilstate:
      return runtime_ && o.runtime_gilstate_tstate_current >= 0
                 ? snap.read_ptr(runtime_ + o.runtime_gilstate_tstate_current, &ok)
                 : 0;
    case GilSource::kThreadFlag:  // per thread: see holds_gil()
      return 0;
    case GilSource::kInterpreterGil: {
      if (!interp || o.interp_gil < 0 || o.gil_locked < 0 || o.gil_last_holder < 0) return 0;
      uint64_t gil = snap.read_ptr(interp + o.interp_gil, &ok);
      if (!ok || !gil) return 0;
      // A free-threaded build runs without its GIL unless PYTHON_GIL=1.
      if (o.dbg.gil_enabled >= 0) {
        int32_t enabled = 0;
        if (!snap.read_value(gil + o.dbg.gil_enabled, &enabled) || !enabled) return 0;
      }
      int32_t locked = 0;
      if (!snap.read_value(gil + o.gil_locked, &locked) || locked != 1) return 0;
      return snap.read_ptr(gil + o.gil_last_holder, &ok);
    }
  }
  return 0;
}

bool PythonProcess::gil_enabled() const {
  if (!layout_.features.free_threaded) return true;
  SnapshotCache snap(mem_);
  uint64_t interp = main_interpreter(snap);
  bool ok = false;
  uint64_t gil = interp && layout_.interp_gil >= 0 ? snap.read_ptr(interp + layout_.interp_gil, &ok) : 0;
  int32_t enabled = 0;
  return gil && layout_.dbg.gil_enabled >= 0 && snap.read_value(gil + layout_.dbg.gil_enabled, &enabled) && enabled != 0;
}

bool PythonProcess::holds_gil(SnapshotCache& snap, uint64_t tstate) const {
  int32_t holds = 0;
  return layout_.dbg.tstate_holds_gil >= 0 && snap.read_value(tstate + layout_.dbg.tstate_holds_gil, &holds) && holds == 1;
}

bool PythonProcess::validate_interp_head(uint64_t head_addr) const {
  bool ok = false;
  uint64_t interp = mem_.read_ptr(head_addr, &ok);
  if (!ok || !interp) return false;
  uint64_t tstate = mem_.read_ptr(interp + layout_.interp_tstate_head, &ok);
  if (!ok || !tstate) return false;
  uint64_t back = mem_.read_ptr(tstate + layout_.tstate_interp, &ok);
  return ok && back == interp;
}

// A real thread state names a live OS thread: its native id (3.11+) is one
// of the process's tasks, or its pthread_t points at libc's thread struct,
// which holds one of those task ids. This tells an interpreter apart from
// look-alikes in the scan (on 2.7, a PyThreadState* satisfies the
// "first thread points back" test too, as both links sit at offset 8).
bool PythonProcess::names_live_thread(uint64_t tstate) const {
  std::vector<pid_t> tasks = list_threads(pid_);
  std::set<int32_t> tids(tasks.begin(), tasks.end());
  if (layout_.tstate_native_thread_id >= 0) {
    uint64_t native = 0;
    if (mem_.read_value(tstate + layout_.tstate_native_thread_id, &native) && tids.count(static_cast<int32_t>(native)))
      return true;
  }
  bool ok = false;
  uint64_t ident = mem_.read_ptr(tstate + layout_.tstate_thread_id, &ok);
  std::vector<int32_t> block(256);
  if (!ok || !ident || !mem_.read(ident, block.data(), block.size() * 4)) return false;
  for (int32_t v : block)
    if (tids.count(v)) return true;
  return false;
}

bool PythonProcess::scan_for_interp_head(uint64_t start, uint64_t size) {
  // Look for a word that points at an interpreter whose first thread points
  // back at it: that word is the interpreter list head.
  std::vector<Mapping> maps = read_maps(pid_);
  // Rounded up: a section's size need not be a multiple of 8 (arm64
  // Debian's python3.11 has such a .bss), and every byte of it is read in.
  std::vector<uint64_t> words((size + 7) / 8);
  constexpr uint64_t kChunk = 1 << 20;
  for (uint64_t off = 0; off < size; off += kChunk) {
    uint64_t n = std::min(kChunk, size - off);
    if (!mem_.read(start + off, reinterpret_cast<char*>(words.data()) + off, n))
      std::memset(reinterpret_cast<char*>(words.data()) + off, 0, n);
  }
  int checked = 0;
  for (size_t i = 0; i < words.size() && checked < 200000; ++i) {
    uint64_t v = words[i];
    if (v < 0x10000 || (v & 7) || !rw_mapping_contains(maps, v)) continue;
    ++checked;
    uint64_t head_addr = start + i * 8;
    if (validate_interp_head(head_addr) && names_live_thread(mem_.read_ptr(v + layout_.interp_tstate_head, nullptr))) {
      interp_head_addr_ = head_addr;
      if (layout_.runtime_interpreters_head >= 0) runtime_ = head_addr - layout_.runtime_interpreters_head;
      return true;
    }
  }
  return false;
}

void PythonProcess::locate(const AttachOptions& opts) {
  std::vector<Mapping> maps = read_maps(pid_);
  if (maps.empty()) {
    if (!process_exists(pid_))
      throw ReaderError(kNoSuchProcess, "process " + std::to_string(pid_) + " exited before it could be read");
    throw ReaderError(kPermissionDenied, "cannot read /proc/" + std::to_string(pid_) + "/maps. " + permission_fix_hint());
  }

  // libpython first (the usual pyenv/python.org build), then the executable
  // itself (Debian's and most distro builds link the interpreter in).
  std::vector<Candidate> candidates;
  auto add = [&](const std::string& path) {
    for (auto& c : candidates) if (c.path == path) return;
    for (auto& m : maps)
      if (m.path == path && m.offset == 0) { candidates.push_back({path, m.start}); return; }
  };
  for (auto& m : maps) if (is_libpython(m.path)) add(m.path);
  // A mapped python* file before the executable: under an emulator such as
  // qemu-user the executable is the emulator, and the interpreter's code is
  // mapped without 'x' (qemu translates it; the host never runs it).
  for (auto& m : maps)
    if (!m.path.empty() && m.path[0] == '/' && !is_libpython(m.path) && base_name(m.path).rfind("python", 0) == 0)
      add(m.path);
  if (!exe_.empty()) add(exe_);

  std::string tried;
  for (auto& cand : candidates) {
    ElfFile elf;
    try {
      elf = ElfFile::open(target_file_path(pid_, cand.path));
    } catch (const ReaderError&) {
      continue;
    }
    uint64_t bias = elf.is_shared_object() ? cand.load_start - (elf.first_load_vaddr() & ~0xfffULL) : 0;
    auto sym = [&](const char* n) -> uint64_t {
      if (opts.ignore_symbols) return 0;
      auto v = elf.symbol(n);
      return v ? *v + bias : 0;
    };

    // Version: Py_Version (3.11+), then PY_VERSION in .rodata, then the file name.
    int major = 0, minor = 0, micro = 0;
    std::string text;
    bool named = version_from_name(cand.path, &major, &minor);
    if (uint64_t pv = elf.symbol("Py_Version") ? *elf.symbol("Py_Version") + bias : 0) {
      uint32_t hex = 0;
      if (mem_.read_value(pv, &hex) && (hex >> 24) >= 2 && (hex >> 24) <= 3) {
        major = hex >> 24; minor = (hex >> 16) & 0xff; micro = (hex >> 8) & 0xff;
        named = true;
      }
    }
    const ElfSection* rodata = elf.section(".rodata");
    if (named && rodata) text = version_string_in(elf.section_bytes(*rodata, 64 << 20), major, minor);
    if (!named) {
      // No name hint and no Py_Version: try the versions we know.
      if (rodata) {
        std::string ro = elf.section_bytes(*rodata, 64 << 20);
        for (int mi = kNewestKnownDebugLayout + 5; mi >= 6 && text.empty(); --mi) {
          text = version_string_in(ro, 3, mi);
          if (!text.empty()) { major = 3; minor = mi; named = true; }
        }
        if (text.empty()) { text = version_string_in(ro, 2, 7); if (!text.empty()) { major = 2; minor = 7; named = true; } }
      }
    }
    if (!named) continue;
    if (text.empty()) text = std::to_string(major) + "." + std::to_string(minor) + (micro ? "." + std::to_string(micro) : "");
    else if (!micro) sscanf(text.c_str(), "%*d.%*d.%d", &micro);
    version_.major = major; version_.minor = minor; version_.micro = micro; version_.text = text;
    binary_ = cand.path;
    tried += (tried.empty() ? "" : ", ") + cand.path;

    uint64_t runtime_sym = sym("_PyRuntime");
    const ElfSection* pyruntime_section = elf.section(".PyRuntime");
    const VersionTraits* traits = traits_for(major, minor);
    if (!traits)
      throw ReaderError(kUnsupportedVersion, "Python " + text + " is not supported (2.7 and 3.6+ are)");
    if (traits->locate == Locate::kDebugOffsets) {
      // The interpreter describes itself: find _PyRuntime, read its offsets.
      uint64_t rt = runtime_sym;
      if (!rt && pyruntime_section) rt = pyruntime_section->addr + bias;
      if (!rt) {
        for (const char* sec : {".PyRuntime", ".data"}) {
          const ElfSection* s = elf.section(sec);
          if (!s || rt) continue;
          std::string bytes(std::min<uint64_t>(s->size, 16 << 20), '\0');
          if (!mem_.read(s->addr + bias, bytes.data(), bytes.size())) continue;
          for (size_t off = 0; off + 8 <= bytes.size(); off += 8)
            if (std::memcmp(bytes.data() + off, kDebugCookie, 8) == 0) { rt = s->addr + bias + off; break; }
        }
      }
      if (!rt) check_alive();
      // Fields the table lacks come from the generated table of this minor
      // version, or of the newest one for a version newer than all of them.
      const PyOffsets* fallback = find_table_offsets(major, minor);
      for (int mi = minor; !fallback && mi >= 13; --mi) fallback = find_table_offsets(major, mi);
      std::string why = "no _PyRuntime (and no xdebugpy cookie) was found in " + cand.path;
      if (!rt || !read_debug_offsets(mem_, rt, minor, fallback, &layout_, &why)) {
        check_alive();  // a target that exited or refuses us is that, not an unknown layout
        throw ReaderError(kUnsupportedVersion, "Python " + text + " in " + cand.path + ": its _Py_DebugOffsets cannot be "
                                               "used: " + why + ". If this is an unmodified CPython, upgrade periscope or report this version.");
      }
      runtime_ = rt;
      interp_head_addr_ = rt + layout_.runtime_interpreters_head;
      locate_method_ = runtime_sym ? "symbols" : "scan";
    } else {
      const PyOffsets* table = find_table_offsets(major, minor);
      if (!table)
        throw ReaderError(kUnsupportedVersion, "Python " + text + " has no offsets table in this agent; supported: "
                                               "2.7, 3.6-3.12 from tables and 3.13+ from the interpreter itself");
      static_cast<PyOffsets&>(layout_) = *table;
      apply_arch_offsets(elf.machine(), &layout_);
      layout_.features = features_for(*traits, false, layout_.dbg);
      if (traits->locate == Locate::kRuntime) {
        if (runtime_sym) {
          runtime_ = runtime_sym;
          interp_head_addr_ = runtime_sym + layout_.runtime_interpreters_head;
          locate_method_ = "symbols";
        }
      } else if (uint64_t ih = sym("interp_head")) {
        interp_head_addr_ = ih;
        locate_method_ = "symbols";
      }
      if (traits->gil == GilSource::kThreadStateGlobal) tstate_current_addr_ = sym("_PyThreadState_Current");
      if (!interp_head_addr_ || !validate_interp_head(interp_head_addr_)) {
        interp_head_addr_ = 0;
        for (const char* sec : {".PyRuntime", ".data", ".bss"}) {
          const ElfSection* s = elf.section(sec);
          if (s && scan_for_interp_head(s->addr + bias, s->size)) { locate_method_ = "scan"; break; }
        }
      }
    }
    code_type_ = sym("PyCode_Type");
    if (interp_head_addr_ && validate_interp_head(interp_head_addr_)) return;
    check_alive();
    throw ReaderError(kNotPython, "found Python " + text + " in " + cand.path + " of pid " + std::to_string(pid_) +
                                      " but no running interpreter (is it still starting up or shutting down?); "
                                      "try again in a moment");
  }
  check_alive();
  throw ReaderError(kNotPython, "pid " + std::to_string(pid_) + " (" + (exe_.empty() ? cmdline_ : exe_) +
                                    ") is not a Python process: no CPython interpreter found in its executable or "
                                    "libraries" + (tried.empty() ? "" : " (looked in " + tried + ")"));
}

}  // namespace periscope
