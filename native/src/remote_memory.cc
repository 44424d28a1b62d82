#include "remote_memory.h"

#include <sys/uio.h>
#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <algorithm>
#include <cstring>

#include "errors.h"
#include "proc.h"

namespace periscope {

namespace {
// Addresses outside the user half of x86_64/aarch64 are garbage by definition.
constexpr uint64_t kMaxUserAddr = 0x0000800000000000ULL;
constexpr size_t kMaxSingleRead = 64 << 20;

bool plausible(uint64_t addr, size_t len) {
  return addr >= 4096 && len <= kMaxSingleRead && addr < kMaxUserAddr && addr + len <= kMaxUserAddr;
}

// Which process_vm_readv failures mean "try /proc/PID/mem":
// - ENOSYS: the syscall is not there (a kernel without
//   CONFIG_CROSS_MEMORY_ATTACH, an emulator or sandbox that does not
//   implement it, or a seccomp filter answering ENOSYS);
// - EPERM: a real ptrace refusal, but also a seccomp filter's usual answer
//   (Docker's default profile without CAP_SYS_PTRACE). Opening the file runs
//   the same ptrace check, so a real refusal is still reported as one;
// - EACCES: not a kernel answer for this syscall, only a filter's.
// Never EFAULT/EIO (a garbage pointer: routine), ESRCH (the process is
// gone), ENOMEM or EINVAL (the file would fail the same way).
bool wants_fallback(int err) { return err == ENOSYS || err == EPERM || err == EACCES; }

// ENOSYS holds for every target: later attaches (children, the next dump)
// go straight to the file instead of failing once each.
std::atomic<bool> g_vm_readv_missing{false};

std::string errno_text(int err) {
  const char* name = err == ENOSYS ? "ENOSYS" : err == EPERM ? "EPERM" : err == EACCES ? "EACCES"
                   : err == ENOENT ? "ENOENT" : err == EROFS ? "EROFS" : nullptr;
  std::string text = std::strerror(err);
  return name ? std::string(name) + " (" + text + ")" : "errno " + std::to_string(err) + " (" + text + ")";
}
}  // namespace

ReaderMode reader_mode_from_env() {
  const char* v = std::getenv("PERISCOPE_MEMORY_READER");
  if (!v || !*v || std::strcmp(v, "auto") == 0) return ReaderMode::kAuto;
  if (std::strcmp(v, "process_vm_readv") == 0) return ReaderMode::kVmReadv;
  if (std::strcmp(v, "procmem") == 0) return ReaderMode::kProcMem;
  throw ReaderError(kBadArgument, std::string("PERISCOPE_MEMORY_READER is \"") + v +
                                      "\"; use auto (the default), process_vm_readv or procmem");
}

RemoteMemory::RemoteMemory(pid_t pid) : pid_(pid), mode_(reader_mode_from_env()) {
  via_procmem_ = mode_ == ReaderMode::kProcMem || (mode_ == ReaderMode::kAuto && g_vm_readv_missing.load());
}

std::string RemoteMemory::unreadable_reason() const {
  std::string file = "/proc/" + std::to_string(pid_) + "/mem";
  std::string how =
      mode_ == ReaderMode::kProcMem  ? "PERISCOPE_MEMORY_READER=procmem allows only " + file + ", and opening it failed with " + errno_text(procmem_errno_)
      : mode_ == ReaderMode::kVmReadv ? "process_vm_readv failed with " + errno_text(vm_errno_) + ", and PERISCOPE_MEMORY_READER=process_vm_readv rules out " + file
                                      : "process_vm_readv failed with " + errno_text(vm_errno_) + ", and opening " + file + " failed with " + errno_text(procmem_errno_);
  return "cannot read the memory of pid " + std::to_string(pid_) + ": " + how +
         ". The agent needs one of them: a kernel with CONFIG_CROSS_MEMORY_ATTACH and no seccomp filter on "
         "process_vm_readv, or /proc mounted with the target's /proc/PID/mem openable (unset "
         "PERISCOPE_MEMORY_READER to let the agent pick).";
}

void RemoteMemory::note_vm_failure(int err) const {
  if (err == ESRCH) gone_ = true;
  else if (err == EPERM && !procmem_failed_) denied_ = true;
  else if (err == ENOSYS && mode_ == ReaderMode::kVmReadv) { vm_errno_ = err; unreadable_ = true; }
}

bool RemoteMemory::open_procmem() const {
  if (procmem_.is_open()) return true;
  if (procmem_failed_) return false;
  int err = procmem_.open(pid_);
  if (err == 0) return true;
  procmem_failed_ = true;
  procmem_errno_ = err;
  if (err == EACCES || err == EPERM) denied_ = true;  // the same ptrace check refused us
  else if (!process_exists(pid_)) gone_ = true;
  else unreadable_ = true;
  return false;
}

bool RemoteMemory::fall_back(int vm_errno) const {
  if (mode_ != ReaderMode::kAuto || !wants_fallback(vm_errno)) return false;
  vm_errno_ = vm_errno;
  if (vm_errno == ENOSYS) g_vm_readv_missing.store(true);
  if (!open_procmem()) return false;
  via_procmem_ = true;
  return true;
}

bool RemoteMemory::read_vm(uint64_t addr, void* out, size_t len, int* err) const {
  size_t done = 0;
  while (done < len) {
    struct iovec local{static_cast<char*>(out) + done, len - done};
    struct iovec remote{reinterpret_cast<void*>(addr + done), len - done};
    ++syscalls_;
    ssize_t n = process_vm_readv(pid_, &local, 1, &remote, 1, 0);
    if (n <= 0) {
      *err = n < 0 ? errno : 0;
      return false;
    }
    done += static_cast<size_t>(n);
  }
  return true;
}

bool RemoteMemory::read_procmem(uint64_t addr, void* out, size_t len) const {
  if (!open_procmem()) return false;
  size_t done = 0;
  while (done < len) {
    ++syscalls_;
    ssize_t n = procmem_.read(addr + done, static_cast<char*>(out) + done, len - done);
    // 0: the process has no memory any more (exited, maybe not yet reaped),
    // what process_vm_readv reports as ESRCH.
    if (n == 0 || (n < 0 && errno == ESRCH)) gone_ = true;
    if (n <= 0) return false;  // EIO: an unmapped address
    done += static_cast<size_t>(n);
  }
  return true;
}

bool RemoteMemory::read(uint64_t addr, void* out, size_t len) const {
  if (len == 0) return true;
  if (!plausible(addr, len)) return false;
  if (via_procmem_) return read_procmem(addr, out, len);
  int err = 0;
  if (read_vm(addr, out, len, &err)) return true;
  if (err != ESRCH && fall_back(err)) return read_procmem(addr, out, len);
  note_vm_failure(err);
  return false;
}

uint64_t RemoteMemory::read_ptr(uint64_t addr, bool* ok) const {
  uint64_t v = 0;
  bool r = read(addr, &v, sizeof v);
  if (ok) *ok = r;
  return r ? v : 0;
}

void RemoteMemory::read_each(std::vector<Range>& ranges, size_t from) const {
  for (size_t i = from; i < ranges.size(); ++i) {
    auto& r = ranges[i];
    r.ok = plausible(r.addr, r.len) && read(r.addr, r.out, r.len);
  }
}

void RemoteMemory::read_many(std::vector<Range>& ranges) const {
  // /proc/PID/mem has no scatter read across remote addresses: one pread each.
  if (via_procmem_) return read_each(ranges, 0);
  // process_vm_readv stops at the first remote range that faults, so on a
  // short read we fall back to reading the rest one by one.
  constexpr size_t kBatch = 512;
  for (size_t start = 0; start < ranges.size(); start += kBatch) {
    size_t end = std::min(ranges.size(), start + kBatch);
    std::vector<iovec> local, remote;
    local.reserve(end - start);
    remote.reserve(end - start);
    for (size_t i = start; i < end; ++i) {
      auto& r = ranges[i];
      r.ok = false;
      if (!plausible(r.addr, r.len)) continue;
      local.push_back({r.out, r.len});
      remote.push_back({reinterpret_cast<void*>(r.addr), r.len});
    }
    if (local.empty()) continue;
    ++syscalls_;
    ssize_t n = process_vm_readv(pid_, local.data(), local.size(), remote.data(), remote.size(), 0);
    if (n < 0) {
      int err = errno;
      if (err != ESRCH && fall_back(err)) return read_each(ranges, start);
      note_vm_failure(err);
      // The process, or the syscall itself, is the problem: reading the
      // ranges one by one would fail the same way.
      if (err == ESRCH || wants_fallback(err)) return;
    }
    size_t got = n > 0 ? static_cast<size_t>(n) : 0;
    for (size_t i = start; i < end; ++i) {
      auto& r = ranges[i];
      if (!plausible(r.addr, r.len)) continue;
      if (got >= r.len) { r.ok = true; got -= r.len; }
      else { got = 0; r.ok = read(r.addr, r.out, r.len); }
    }
  }
}

uint8_t* SnapshotCache::buffer(size_t i) {
  while (pool_.size() <= i) pool_.emplace_back(new uint8_t[kBlock]);  // uninitialised on purpose
  return pool_[i].get();
}

void SnapshotCache::begin_snapshot() {
  touched_.clear();
  for (const Slot& s : slots_)
    if (s.touched && s.readable) touched_.push_back(s.base);
  slots_.clear();
  ranges_.clear();
  for (uint64_t base : touched_) {
    uint8_t* data = buffer(slots_.size());
    slots_.push_back({base, data, true, false});
    ranges_.push_back({base, data, kBlock, false});
  }
  if (!ranges_.empty()) mem_.read_many(ranges_);
  for (size_t i = 0; i < ranges_.size(); ++i) slots_[i].readable = ranges_[i].ok;
  forget_last();
}

SnapshotCache::Slot* SnapshotCache::find_or_load(uint64_t base) {
  if (last_ < slots_.size() && slots_[last_].base == base) return &slots_[last_];
  for (size_t i = 0; i < slots_.size(); ++i)
    if (slots_[i].base == base) { last_ = i; return &slots_[i]; }
  if (slots_.size() >= kMaxBlocks) { slots_.clear(); forget_last(); }
  uint8_t* data = buffer(slots_.size());
  slots_.push_back({base, data, mem_.read(base, data, kBlock), false});
  last_ = slots_.size() - 1;
  return &slots_.back();
}

bool SnapshotCache::read_slow(uint64_t addr, void* out, size_t len) {
  if (len == 0) return true;
  if (len > kBlock) return mem_.read(addr, out, len);
  uint8_t* dst = static_cast<uint8_t*>(out);
  uint64_t cur = addr;
  size_t left = len;
  while (left > 0) {
    uint64_t base = cur & ~(kBlock - 1);
    Slot* b = find_or_load(base);
    if (!b->readable) return mem_.read(cur, dst, left);  // block straddles an unmapped page
    b->touched = true;
    last_base_ = base;
    last_data_ = b->data;
    size_t off = cur - base;
    size_t n = std::min<size_t>(left, kBlock - off);
    std::memcpy(dst, b->data + off, n);
    dst += n; cur += n; left -= n;
  }
  return true;
}


}  // namespace periscope
