// Reads another process's memory with process_vm_readv. The target keeps
// running while we read, so every read may fail or return torn data; callers
// treat a false return as "this pointer is garbage", never as fatal.
#pragma once
#include <sys/types.h>
#include <cstdint>
#include <cstring>
#include <string>
#include <unordered_map>
#include <memory>
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
// most frame reads after the first hit a block already fetched. Blocks live
// in buffers reused from snapshot to snapshot (never zeroed: every byte is
// read from the target before use), and a snapshot holds few of them, so a
// short list with a last-hit shortcut beats a hash table here.
class SnapshotCache {
 public:
  explicit SnapshotCache(const RemoteMemory& mem) : mem_(mem) {}
  // Reads within the block of the previous read are the common case (frames
  // next to each other, fields of one struct): that path is inline.
  bool read(uint64_t addr, void* out, size_t len) {
    uint64_t off = addr - last_base_;
    if (off < kBlock && len <= kBlock - off && last_data_) {
      std::memcpy(out, last_data_ + off, len);
      return true;
    }
    return read_slow(addr, out, len);
  }
  template <class T>
  bool read_value(uint64_t addr, T* out) { return read(addr, out, sizeof(T)); }
  uint64_t read_ptr(uint64_t addr, bool* ok) {
    uint64_t v = 0;
    bool r = read(addr, &v, sizeof v);
    if (ok) *ok = r;
    return r ? v : 0;
  }
  // Starts a new snapshot: forgets cached blocks, then re-reads in one
  // scatter read every block the previous snapshot used. Stacks change
  // little between samples, so most reads of this snapshot then hit.
  void begin_snapshot();
  void clear() { slots_.clear(); forget_last(); }
  const RemoteMemory& memory() const { return mem_; }

 private:
  static constexpr uint64_t kBlock = 4096;
  static constexpr size_t kMaxBlocks = 256;
  struct Slot {
    uint64_t base;
    uint8_t* data;   // a pool buffer; unused when !readable
    bool readable;
    bool touched;    // used by the current snapshot
  };
  Slot* find_or_load(uint64_t base);
  uint8_t* buffer(size_t i);
  bool read_slow(uint64_t addr, void* out, size_t len);
  void forget_last() { last_ = 0; last_base_ = 0; last_data_ = nullptr; }
  const RemoteMemory& mem_;
  std::vector<Slot> slots_;                        // this snapshot's blocks
  std::vector<std::unique_ptr<uint8_t[]>> pool_;   // slots_[i] uses pool_[i]
  size_t last_ = 0;                                // slot of the last hit
  uint64_t last_base_ = 0;                         // its block, for the inline path
  const uint8_t* last_data_ = nullptr;             // its bytes (nullptr: none, or unreadable)
  std::vector<uint64_t> touched_;                  // scratch for begin_snapshot
  std::vector<RemoteMemory::Range> ranges_;        // scratch for begin_snapshot
};

}  // namespace periscope
