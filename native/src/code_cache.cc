#include "code_cache.h"

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "python_strings.h"

namespace periscope {

namespace {
constexpr size_t kMaxLineTable = 1 << 20;

}  // namespace

std::shared_ptr<const CodeInfo> CodeCache::get(SnapshotCache& mem, uint64_t code) {
  if (!code) return nullptr;
  uint64_t type = 0;
  if (!mem.read_value(code + o_.object_type, &type) || !is_code_type(mem, type)) return nullptr;
  bool ok1 = false, ok2 = false, ok3 = false;
  uint64_t name_ptr = mem.read_ptr(code + (o_.code_qualname >= 0 ? o_.code_qualname : o_.code_name), &ok1);
  uint64_t filename_ptr = mem.read_ptr(code + o_.code_filename, &ok2);
  uint64_t table_ptr = mem.read_ptr(code + (o_.code_linetable >= 0 ? o_.code_linetable : o_.code_lnotab), &ok3);
  if (!ok1 || !ok2 || !ok3) return nullptr;
  auto it = entries_.find(code);
  if (it != entries_.end() && it->second->name_ptr == name_ptr && it->second->filename_ptr == filename_ptr &&
      it->second->table_ptr == table_ptr)
    return it->second;
  auto info = load(mem, code, name_ptr, filename_ptr, table_ptr);
  if (!info) return nullptr;
  if (it != entries_.end()) retire(it);  // the address now holds another code object
  if (entries_.size() >= kMaxEntries) {
    for (auto& [addr, entry] : entries_) retired_.push_back(std::move(entry));
    entries_.clear();
  }
  entries_[code] = info;
  return info;
}

CodeCache::Span CodeCache::span() const {
  int64_t name = o_.code_qualname >= 0 ? o_.code_qualname : o_.code_name;
  int64_t table = o_.code_linetable >= 0 ? o_.code_linetable : o_.code_lnotab;
  int64_t lo = std::min({name, o_.code_filename, table});
  int64_t hi = std::max({name, o_.code_filename, table}) + 8;
  return {lo, name - lo, o_.code_filename - lo, table - lo, hi - lo};
}

void CodeCache::retire(std::unordered_map<uint64_t, std::shared_ptr<const CodeInfo>>::iterator it) {
  retired_.push_back(std::move(it->second));
  entries_.erase(it);
}

void CodeCache::get_many(SnapshotCache& mem, const std::vector<uint64_t>& codes, double now_us,
                         std::vector<const CodeInfo*>& out) {
  out.assign(codes.size(), nullptr);
  Span sp = span();
  // Entries not confirmed lately, each once (a recursive stack repeats codes).
  stale_.clear();
  for (size_t i = 0; i < codes.size(); ++i) {
    uint64_t code = codes[i];
    if (!code || (i > 0 && code == codes[i - 1])) continue;
    auto it = entries_.find(code);
    if (it == entries_.end() || now_us - it->second->validated_at_us < kRevalidateUs) continue;
    if (std::find(stale_.begin(), stale_.end(), code) == stale_.end()) stale_.push_back(code);
  }
  if (!stale_.empty()) {
    stale_buf_.resize(stale_.size() * sp.len);
    stale_ranges_.clear();
    for (size_t i = 0; i < stale_.size(); ++i)
      stale_ranges_.push_back({stale_[i] + sp.start, stale_buf_.data() + i * sp.len, static_cast<size_t>(sp.len), false});
    mem.memory().read_many(stale_ranges_);
    for (size_t i = 0; i < stale_.size(); ++i) {
      auto it = entries_.find(stale_[i]);
      bool valid = false;
      if (stale_ranges_[i].ok) {
        const uint8_t* b = stale_buf_.data() + i * sp.len;
        uint64_t name, filename, table;
        std::memcpy(&name, b + sp.name, 8);
        std::memcpy(&filename, b + sp.filename, 8);
        std::memcpy(&table, b + sp.table, 8);
        valid = it->second->name_ptr == name && it->second->filename_ptr == filename && it->second->table_ptr == table;
      }
      if (valid) it->second->validated_at_us = now_us;
      else retire(it);
    }
  }
  for (size_t i = 0; i < codes.size(); ++i) {
    if (!codes[i]) continue;
    if (i > 0 && codes[i] == codes[i - 1]) { out[i] = out[i - 1]; continue; }
    auto it = entries_.find(codes[i]);
    if (it != entries_.end()) { out[i] = it->second.get(); continue; }
    auto info = get(mem, codes[i]);
    if (info) info->validated_at_us = now_us;
    out[i] = info.get();  // get() keeps it in entries_ (or retired_ when the cache was full)
  }
}

bool CodeCache::is_code_type(SnapshotCache& mem, uint64_t type) {
  if (code_type_) return type == code_type_;
  // Without symbols, learn &PyCode_Type from the first type named "code".
  std::string name;
  if (!read_type_object_name(mem, o_, type, &name) || name != "code") return false;
  code_type_ = type;
  return true;
}

bool CodeCache::is_other_object(SnapshotCache& mem, uint64_t addr) {
  uint64_t type = 0;
  std::string name;  // a real type has a readable name
  if (!addr || !mem.read_value(addr + o_.object_type, &type) || !type) return false;
  return read_type_object_name(mem, o_, type, &name) && !is_code_type(mem, type);
}

int CodeInfo::line_at(int64_t byte_offset) const {
  if (byte_offset == last_offset_) return last_line_;
  auto it = lines_.find(byte_offset);
  int line;
  if (it != lines_.end()) {
    line = it->second;
  } else {
    line = line_for_offset(format, line_table, first_line, byte_offset);
    if (lines_.size() < 4096) lines_.emplace(byte_offset, line);
  }
  last_offset_ = byte_offset;
  last_line_ = line;
  return line;
}

std::shared_ptr<const CodeInfo> CodeCache::load(SnapshotCache& mem, uint64_t code, uint64_t name_ptr,
                                                uint64_t filename_ptr, uint64_t table_ptr) {
  ++misses_;
  auto info = std::make_shared<CodeInfo>();
  info->name_ptr = name_ptr;
  info->filename_ptr = filename_ptr;
  info->table_ptr = table_ptr;
  info->format = o_.features.traits.line_table;
  int32_t first_line = 0;
  if (!mem.read_value(code + o_.code_firstlineno, &first_line)) return nullptr;
  info->first_line = first_line;
  if (!read_py_string(mem, o_, name_ptr, &info->name) || !read_py_string(mem, o_, filename_ptr, &info->filename))
    return nullptr;
  if (!read_py_bytes(mem, o_, table_ptr, kMaxLineTable, &info->line_table)) info->line_table.clear();
  info->is_bootstrap_inner = info->name == "_bootstrap_inner" || info->name == "__bootstrap_inner" ||
                             info->name == "Thread._bootstrap_inner";
  return info;
}

}  // namespace periscope
