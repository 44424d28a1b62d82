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

void SnapshotCache::begin_snapshot() {
  std::vector<uint64_t> previous;
  previous.swap(touched_);
  blocks_.clear();
  std::vector<RemoteMemory::Range> ranges;
  ranges.reserve(previous.size());
  for (uint64_t base : previous) {
    Block& block = blocks_[base];
    block.data.resize(kBlock);
    ranges.push_back({base, block.data.data(), kBlock, false});
  }
  if (!ranges.empty()) mem_.read_many(ranges);
  for (auto& r : ranges) {
    if (!r.ok) blocks_.erase(r.addr);
  }
}

bool SnapshotCache::read(uint64_t addr, void* out, size_t len) {
  if (len == 0) return true;
  if (len > kBlock) return mem_.read(addr, out, len);
  uint8_t* dst = static_cast<uint8_t*>(out);
  uint64_t cur = addr;
  size_t left = len;
  while (left > 0) {
    uint64_t base = cur & ~(kBlock - 1);
    auto it = blocks_.find(base);
    if (it == blocks_.end()) {
      if (blocks_.size() >= kMaxBlocks) { blocks_.clear(); touched_.clear(); }
      Block block;
      block.data.resize(kBlock);
      if (!mem_.read(base, block.data.data(), kBlock)) block.data.clear();
      it = blocks_.emplace(base, std::move(block)).first;
    }
    Block& b = it->second;
    if (b.data.empty()) return mem_.read(cur, dst, left);  // block straddles an unmapped page
    if (!b.touched) {
      b.touched = true;
      touched_.push_back(base);
    }
    size_t off = cur - base;
    size_t n = std::min<size_t>(left, kBlock - off);
    std::memcpy(dst, b.data.data() + off, n);
    dst += n; cur += n; left -= n;
  }
  return true;
}

uint64_t SnapshotCache::read_ptr(uint64_t addr, bool* ok) {
  uint64_t v = 0;
  bool r = read(addr, &v, sizeof v);
  if (ok) *ok = r;
  return r ? v : 0;
}

}  // namespace periscope
