// The second way to read another process's memory: pread() on /proc/PID/mem.
// It needs the same ptrace permission as process_vm_readv (checked when the
// file is opened), but it is a different kernel path: it works where
// process_vm_readv is missing (kernels without CONFIG_CROSS_MEMORY_ATTACH,
// some emulators and sandboxes) or filtered out by a seccomp profile (Docker's
// default one denies process_vm_readv without CAP_SYS_PTRACE, yet lets a
// process open /proc/PID/mem of a same-user process).
#pragma once
#include <sys/types.h>
#include <cstddef>
#include <cstdint>

namespace periscope {

class ProcMemFile {
 public:
  ProcMemFile() = default;
  ~ProcMemFile();
  ProcMemFile(const ProcMemFile&) = delete;
  ProcMemFile& operator=(const ProcMemFile&) = delete;

  // Opens /proc/PID/mem read-only; returns 0 or the errno of open().
  int open(pid_t pid);
  bool is_open() const { return fd_ >= 0; }

  // Reads up to len bytes at addr: the count read (short when an unmapped
  // page follows), 0 when the process has no memory any more (it exited),
  // or -1 with errno set (EIO when addr itself is unmapped).
  ssize_t read(uint64_t addr, void* out, size_t len) const;

 private:
  int fd_ = -1;
};

}  // namespace periscope
