// Code-object metadata (names, file, line table) cached by address. A code
// object's fields never change while it lives, so a cheap check of the
// pointers we cached from is enough to notice that the address was freed
// and reused for another code object.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "line_table.h"
#include "layout.h"
#include "remote_memory.h"

namespace periscope {

struct CodeInfo {
  std::string name;      // qualified name where the version has one
  std::string filename;
  int first_line = 0;
  std::string line_table;
  // threading.Thread._bootstrap_inner: its `self` is the Thread object.
  bool is_bootstrap_inner = false;
  LineTableFormat format = kLocations311;
  uint64_t name_ptr = 0, filename_ptr = 0, table_ptr = 0;
  // Id given by the sampler that interns this code object (-1 until then).
  mutable int32_t intern_id = -1;
  // When the cached pointers were last confirmed against the target.
  mutable double validated_at_us = -1e18;
  // Decoding a line table is linear in its size; a frame usually sits on
  // the same few instructions sample after sample.
  int line_at(int64_t byte_offset) const;

 private:
  mutable std::unordered_map<int64_t, int> lines_;
  mutable int64_t last_offset_ = -1;  // a recursive stack asks for one offset many times
  mutable int last_line_ = 0;
};

class CodeCache {
 public:
  CodeCache(const Layout& o, uint64_t code_type) : o_(o), code_type_(code_type) {}
  // nullptr when the address does not hold a readable code object.
  std::shared_ptr<const CodeInfo> get(SnapshotCache& mem, uint64_t code);
  // Resolves many code objects at once: the validity check of every cached
  // entry costs one scatter read for the whole batch.
  // Entries confirmed within kRevalidateUs of now_us are trusted as they are:
  // a code object is rarely freed, and its address reused by another code
  // object, within that window, and checking every frame of every sample
  // would cost a page walk per frame.
  // Pointers in `out` stay valid until the next begin_sample(): entries
  // dropped meanwhile are kept alive until then.
  void get_many(SnapshotCache& mem, const std::vector<uint64_t>& codes, double now_us,
                std::vector<const CodeInfo*>& out);
  // Called once per snapshot, before any get_many of it.
  void begin_sample() { retired_.clear(); }
  static constexpr double kRevalidateUs = 250000;
  // True when addr holds a readable object of another type than code (3.14+
  // frames may execute something that is not a code object): such a frame
  // is skipped, where an unreadable one truncates the stack.
  bool is_other_object(SnapshotCache& mem, uint64_t addr);
  size_t size() const { return entries_.size(); }
  uint64_t misses() const { return misses_; }

 private:
  struct Span { int64_t start, name, filename, table, len; };
  Span span() const;
  std::shared_ptr<const CodeInfo> load(SnapshotCache& mem, uint64_t code, uint64_t name_ptr, uint64_t filename_ptr,
                                       uint64_t table_ptr);
  bool is_code_type(SnapshotCache& mem, uint64_t type);
  const Layout& o_;
  uint64_t code_type_;  // &PyCode_Type: from the symbol, else learnt by name
  void retire(std::unordered_map<uint64_t, std::shared_ptr<const CodeInfo>>::iterator it);
  std::unordered_map<uint64_t, std::shared_ptr<const CodeInfo>> entries_;
  std::vector<std::shared_ptr<const CodeInfo>> retired_;  // dropped this sample, still pointed at
  // Scratch reused by get_many.
  std::vector<uint64_t> stale_;
  std::vector<uint8_t> stale_buf_;
  std::vector<RemoteMemory::Range> stale_ranges_;
  uint64_t misses_ = 0;
  static constexpr size_t kMaxEntries = 100000;
};

}  // namespace periscope
