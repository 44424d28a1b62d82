// Reads another process's memory with process_vm_readv. The target keeps
// running while we read, so every read may fail or return torn data; callers
// treat a false return as "this pointer is garbage", never as fatal.
#pragma once
#include <sys/types.h>
#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

namespace periscope {

class RemoteMemory {
 public:
  explicit RemoteMemory(pid_t pid) : pid_(pid) {}
  pid_t pid() const { return pid_; }

  // Reads exactly len bytes or returns false (errno-derived state kept).
  bool read(uint64_t addr, void* out, size_t len) const;
  template <class T>
  bool read_value(uint64_t addr, T* out) const { return read(addr, out, sizeof(T)); }
  uint64_t read_ptr(uint64_t addr, bool* ok) const;

  // Scatter read of several remote ranges in one syscall where possible.
  struct Range { uint64_t addr; void* out; size_t len; bool ok; };
  void read_many(std::vector<Range>& ranges) const;

  // True once a read failed because the process no longer exists.
  bool process_gone() const { return gone_; }
  bool permission_denied() const { return denied_; }
  uint64_t syscalls() const { return syscalls_; }

 private:
  pid_t pid_;
  mutable bool gone_ = false;
  mutable bool denied_ = false;
  mutable uint64_t syscalls_ = 0;
};

// A read-through cache of 4 KiB blocks for the duration of one snapshot:
// 3.11+ frames sit next to each other on the interpreter's data stack, so
// most frame reads after the first hit a block already fetched.
class SnapshotCache {
 public:
  explicit SnapshotCache(const RemoteMemory& mem) : mem_(mem) {}
  bool read(uint64_t addr, void* out, size_t len);
  template <class T>
  bool read_value(uint64_t addr, T* out) { return read(addr, out, sizeof(T)); }
  uint64_t read_ptr(uint64_t addr, bool* ok);
  // Starts a new snapshot: forgets cached blocks, then re-reads in one
  // scatter read every block the previous snapshot used. Stacks change
  // little between samples, so most reads of this snapshot then hit.
  void begin_snapshot();
  void clear() { blocks_.clear(); touched_.clear(); }
  const RemoteMemory& memory() const { return mem_; }

 private:
  static constexpr uint64_t kBlock = 4096;
  static constexpr size_t kMaxBlocks = 256;
  const RemoteMemory& mem_;
  struct Block {
    std::vector<uint8_t> data;  // empty = unreadable
    bool touched = false;       // used by the current snapshot
  };
  std::unordered_map<uint64_t, Block> blocks_;
  std::vector<uint64_t> touched_;  // blocks this snapshot used, in first-use order
};

}  // namespace periscope
