#include "code_cache.h"

#include "python_strings.h"

namespace periscope {

namespace {
constexpr size_t kMaxLineTable = 1 << 20;

LineTableFormat format_for(const PyOffsets& o) {
  if (o.major == 2) return kLnotab27;
  if (o.minor <= 9) return kLnotab36;
  if (o.minor == 10) return kLinetable310;
  return kLocations311;
}
}  // namespace

std::shared_ptr<const CodeInfo> CodeCache::get(SnapshotCache& mem, uint64_t code) {
  if (!code) return nullptr;
  if (code_type_) {
    uint64_t type = 0;
    if (!mem.read_value(code + o_.object_type, &type) || type != code_type_) return nullptr;
  }
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
  if (entries_.size() >= kMaxEntries) entries_.clear();
  entries_[code] = info;
  return info;
}

std::shared_ptr<const CodeInfo> CodeCache::load(SnapshotCache& mem, uint64_t code, uint64_t name_ptr,
                                                uint64_t filename_ptr, uint64_t table_ptr) {
  ++misses_;
  auto info = std::make_shared<CodeInfo>();
  info->name_ptr = name_ptr;
  info->filename_ptr = filename_ptr;
  info->table_ptr = table_ptr;
  info->format = format_for(o_);
  int32_t first_line = 0;
  if (!mem.read_value(code + o_.code_firstlineno, &first_line)) return nullptr;
  info->first_line = first_line;
  if (!read_py_string(mem, o_, name_ptr, &info->name) || !read_py_string(mem, o_, filename_ptr, &info->filename))
    return nullptr;
  if (!read_py_bytes(mem, o_, table_ptr, kMaxLineTable, &info->line_table)) info->line_table.clear();
  return info;
}

}  // namespace periscope
