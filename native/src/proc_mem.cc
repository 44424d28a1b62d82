#include "proc_mem.h"

#include <fcntl.h>
#include <unistd.h>
#include <cerrno>
#include <string>

namespace periscope {

ProcMemFile::~ProcMemFile() {
  if (fd_ >= 0) ::close(fd_);
}

int ProcMemFile::open(pid_t pid) {
  if (fd_ >= 0) return 0;
  std::string path = "/proc/" + std::to_string(pid) + "/mem";
  // O_CLOEXEC: a program the agent launches (`record -- python ...`) must
  // not inherit a handle on another process's memory.
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return errno;
  fd_ = fd;
  return 0;
}

ssize_t ProcMemFile::read(uint64_t addr, void* out, size_t len) const {
  // The file offset is the address. Callers keep addresses in the user half
  // (< 2^47), so the off_t never goes negative.
  for (;;) {
    ssize_t n = ::pread(fd_, out, len, static_cast<off_t>(addr));
    if (n < 0 && errno == EINTR) continue;
    return n;
  }
}

}  // namespace periscope
