// Attaching to a CPython process: find the interpreter's globals in its
// executable or libpython, detect the version, and choose struct offsets.
#pragma once
#include <sys/types.h>
#include <cstdint>
#include <memory>
#include <string>

#include "layout.h"
#include "remote_memory.h"

namespace periscope {

struct AttachOptions {
  // Ignore ELF symbols and find the interpreter by scanning data sections,
  // as we must for stripped binaries; tests use it to prove that path.
  bool ignore_symbols = false;
};

struct PythonVersion {
  int major = 0, minor = 0, micro = 0;
  std::string text;  // "3.11.7"
};

class PythonProcess {
 public:
  PythonProcess(pid_t pid, const AttachOptions& opts);
  // A forked child shares its parent's memory layout, so it can reuse
  // everything the parent's attach found. Throws if that does not hold.
  PythonProcess(const PythonProcess& parent, pid_t child);

  pid_t pid() const { return pid_; }
  const RemoteMemory& memory() const { return mem_; }
  const Layout& layout() const { return layout_; }
  const PythonVersion& version() const { return version_; }
  const std::string& binary_path() const { return binary_; }   // file holding the interpreter
  const std::string& executable() const { return exe_; }
  const std::string& cmdline() const { return cmdline_; }
  const std::string& locate_method() const { return locate_method_; }  // "symbols" or "scan"

  // Head of the interpreter list (the main interpreter), 0 if unreadable.
  // Both read through the snapshot so they share its one scatter read.
  uint64_t main_interpreter(SnapshotCache& snap) const;
  // PyThreadState* holding the GIL, 0 if none, unknown, or published per
  // thread instead (holds_gil).
  uint64_t gil_holder(SnapshotCache& snap, uint64_t interp) const;
  // False for a free-threaded build running without its GIL (the default
  // unless PYTHON_GIL=1): then no thread ever holds one.
  bool gil_enabled() const;
  // 3.15+: the thread's own "holds the GIL" flag.
  bool holds_gil(SnapshotCache& snap, uint64_t tstate) const;
  uint64_t code_type() const { return code_type_; }  // &PyCode_Type, 0 if unknown (found by name later)

  // Raises the right ReaderError when a read failed because of the process
  // itself (gone, permission) rather than torn memory.
  void check_alive() const;

 private:
  void locate(const AttachOptions& opts);
  bool validate_interp_head(uint64_t head_addr) const;
  bool scan_for_interp_head(uint64_t start, uint64_t size);
  bool names_live_thread(uint64_t tstate) const;

  pid_t pid_;
  RemoteMemory mem_;
  Layout layout_;
  PythonVersion version_;
  std::string binary_, exe_, cmdline_, locate_method_;
  uint64_t runtime_ = 0;           // &_PyRuntime (3.7+)
  uint64_t interp_head_addr_ = 0;  // address of the interpreter list head pointer
  uint64_t tstate_current_addr_ = 0;  // 2.7/3.6: &_PyThreadState_Current
  uint64_t code_type_ = 0;
};

}  // namespace periscope
