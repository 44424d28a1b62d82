#include "remote_memory.h"

#include <sys/uio.h>
#include <cerrno>
#include <algorithm>
#include <cstring>

namespace periscope {

namespace {
// Addresses outside the user half of x86_64/aarch64 are garbage by definition.
constexpr uint64_t kMaxUserAddr = 0x0000800000000000ULL;
constexpr size_t kMaxSingleRead = 64 << 20;

bool plausible(uint64_t addr, size_t len) {
  return addr >= 4096 && len <= kMaxSingleRead && addr < kMaxUserAddr && addr + len <= kMaxUserAddr;
}
}  // namespace

bool RemoteMemory::read(uint64_t addr, void* out, size_t len) const {
  if (len == 0) return true;
  if (!plausible(addr, len)) return false;
  size_t done = 0;
  while (done < len) {
    struct iovec local{static_cast<char*>(out) + done, len - done};
    struct iovec remote{reinterpret_cast<void*>(addr + done), len - done};
    ++syscalls_;
    ssize_t n = process_vm_readv(pid_, &local, 1, &remote, 1, 0);
    if (n <= 0) {
      if (n < 0 && errno == ESRCH) gone_ = true;
      if (n < 0 && errno == EPERM) denied_ = true;
      return false;
    }
    done += static_cast<size_t>(n);
  }
  return true;
}

uint64_t RemoteMemory::read_ptr(uint64_t addr, bool* ok) const {
  uint64_t v = 0;
  bool r = read(addr, &v, sizeof v);
  if (ok) *ok = r;
  return r ? v : 0;
}

void RemoteMemory::read_many(std::vector<Range>& ranges) const {
  // process_vm_readv stops at the first remote range that faults, so on a
  // short read we fall back to reading the rest one by one.
  constexpr size_t kBatch = 512;
  for (size_t start = 0; start < ranges.size(); start += kBatch) {
    size_t end = std::min(ranges.size(), start + kBatch);
    std::vector<iovec> local, remote;
    local.reserve(end - start);
    remote.reserve(end - start);
    size_t total = 0;
    for (size_t i = start; i < end; ++i) {
      auto& r = ranges[i];
      r.ok = false;
      if (!plausible(r.addr, r.len)) continue;
      local.push_back({r.out, r.len});
      remote.push_back({reinterpret_cast<void*>(r.addr), r.len});
      total += r.len;
    }
    if (local.empty()) continue;
    ++syscalls_;
    ssize_t n = process_vm_readv(pid_, local.data(), local.size(), remote.data(), remote.size(), 0);
    if (n < 0 && errno == ESRCH) { gone_ = true; return; }
    if (n < 0 && errno == EPERM) { denied_ = true; return; }
    size_t got = n > 0 ? static_cast<size_t>(n) : 0;
    for (size_t i = start; i < end; ++i) {
      auto& r = ranges[i];
      if (!plausible(r.addr, r.len)) continue;
      if (got >= r.len) { r.ok = true; got -= r.len; }
      else { got = 0; r.ok = read(r.addr, r.out, r.len); }
    }
    (void)total;
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
