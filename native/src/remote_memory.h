// Reads another process's memory with process_vm_readv, or with pread() on
// /proc/PID/mem where that syscall is missing or filtered (see proc_mem.h and
// reader_mode below). The target keeps running while we read, so every read
// may fail or return torn data; callers treat a false return as "this pointer
// is garbage", never as fatal.
#pragma once
#include <sys/types.h>
#include <cstdint>
#include <cstring>
#include <string>
#include <unordered_map>
#include <memory>
#include <vector>

#include "proc_mem.h"

namespace periscope {

// How to read: PERISCOPE_MEMORY_READER=auto (the default: process_vm_readv,
// and /proc/PID/mem when the syscall is refused in a way the file may not
// be), process_vm_readv (never fall back) or procmem (only /proc/PID/mem;
// tests use it to prove that path). Read at every attach, so a test can
// switch it in-process. Throws ReaderError BAD_ARGUMENT for another value.
enum class ReaderMode { kAuto, kVmReadv, kProcMem };
ReaderMode reader_mode_from_env();

class RemoteMemory {
 public:
  explicit RemoteMemory(pid_t pid);
  RemoteMemory(const RemoteMemory&) = delete;
  RemoteMemory& operator=(const RemoteMemory&) = delete;
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
  // True when neither reader can be used for a reason other than permission
  // or the process being gone; unreadable_reason() says why (both errnos).
  bool unreadable() const { return unreadable_; }
  std::string unreadable_reason() const;
  uint64_t syscalls() const { return syscalls_; }
  // "process_vm_readv" or "/proc/PID/mem": the reader in use (reported by
  // the addon's info(), so tests and bug reports can tell).
  const char* method() const { return via_procmem_ ? "/proc/PID/mem" : "process_vm_readv"; }

 private:
  // process_vm_readv of exactly len bytes; false with the failing errno in
  // *err (0 for a short read that made no progress).
  bool read_vm(uint64_t addr, void* out, size_t len, int* err) const;
  bool read_procmem(uint64_t addr, void* out, size_t len) const;
  // After process_vm_readv failed with vm_errno: true when reads should now
  // go through /proc/PID/mem (and it could be opened).
  bool fall_back(int vm_errno) const;
  bool open_procmem() const;
  // Records what a process_vm_readv failure says about the process.
  void note_vm_failure(int err) const;
  void read_each(std::vector<Range>& ranges, size_t from) const;

  pid_t pid_;
  ReaderMode mode_;
  mutable ProcMemFile procmem_;
  mutable bool via_procmem_ = false;
  mutable bool procmem_failed_ = false;  // open() failed: do not retry on every read
  mutable int vm_errno_ = 0;             // what made us leave process_vm_readv
  mutable int procmem_errno_ = 0;        // why /proc/PID/mem could not be opened
  mutable bool gone_ = false;
  mutable bool denied_ = false;
  mutable bool unreadable_ = false;
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
