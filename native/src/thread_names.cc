#include "thread_names.h"

#include <vector>

#include "python_strings.h"

namespace periscope {

namespace {
constexpr uint64_t kTpflagsInlineValues = 1ULL << 2;  // 3.13+
constexpr uint64_t kTpflagsManagedDict = 1ULL << 4;   // 3.11+
constexpr int64_t kMaxEntries = 4096;

bool is_name_key(SnapshotCache& mem, const PyOffsets& o, uint64_t key) {
  std::string s;
  if (!read_py_string(mem, o, key, &s)) return false;
  return s == "_name" || s == "_Thread__name";  // 2.7 mangles Thread.__name
}

bool value_string(SnapshotCache& mem, const PyOffsets& o, uint64_t value, std::string* out) {
  return value && read_py_string(mem, o, value, out);
}

// Finds the entry index of the name key in a dict-keys object (3.6+) and the
// value stored in the entry itself (0 for split tables).
bool find_in_keys(SnapshotCache& mem, const PyOffsets& o, uint64_t keys, int64_t* index, uint64_t* entry_value) {
  int64_t nentries = 0;
  uint64_t entries;
  size_t entry_size, key_at, value_at;
  if (o.minor >= 11) {
    uint8_t log2_size = 0, log2_index_bytes = 0, kind = 0;
    if (!mem.read_value(keys + o.dictkeys_size, &log2_size) ||
        !mem.read_value(keys + o.dictkeys_log2_index_bytes, &log2_index_bytes) ||
        !mem.read_value(keys + o.dictkeys_kind, &kind) || log2_index_bytes > 40)
      return false;
    entries = keys + o.dictkeys_indices + (1ULL << log2_index_bytes);
    bool general = kind == 0;
    entry_size = general ? 24 : 16;
    key_at = general ? 8 : 0;
    value_at = general ? 16 : 8;
  } else {
    int64_t size = 0;
    if (!mem.read_value(keys + o.dictkeys_size, &size) || size <= 0 || size > (1LL << 30)) return false;
    int ix = size <= 0xff ? 1 : size <= 0xffff ? 2 : size <= 0xffffffffLL ? 4 : 8;
    entries = keys + o.dictkeys_indices + size * ix;
    entry_size = 24; key_at = 8; value_at = 16;
  }
  if (!mem.read_value(keys + o.dictkeys_nentries, &nentries) || nentries < 0 || nentries > kMaxEntries) return false;
  std::vector<uint8_t> raw(nentries * entry_size);
  if (!mem.read(entries, raw.data(), raw.size())) return false;
  for (int64_t i = 0; i < nentries; ++i) {
    uint64_t key = *reinterpret_cast<uint64_t*>(&raw[i * entry_size + key_at]);
    if (key && is_name_key(mem, o, key)) {
      *index = i;
      *entry_value = *reinterpret_cast<uint64_t*>(&raw[i * entry_size + value_at]);
      return true;
    }
  }
  return false;
}

bool name_from_split(SnapshotCache& mem, const PyOffsets& o, uint64_t keys, uint64_t values, std::string* out) {
  int64_t index = -1;
  uint64_t unused = 0;
  if (!find_in_keys(mem, o, keys, &index, &unused)) return false;
  bool ok = false;
  uint64_t value = mem.read_ptr(values + (o.dictvalues_values > 0 ? o.dictvalues_values : 0) + 8 * index, &ok);
  return ok && value_string(mem, o, value, out);
}

bool name_from_dict(SnapshotCache& mem, const PyOffsets& o, uint64_t dict, std::string* out) {
  if (!dict) return false;
  bool ok = false;
  if (o.major == 2) {
    int64_t mask = 0;
    if (!mem.read_value(dict + o.dict_mask, &mask) || mask < 0 || mask >= kMaxEntries) return false;
    uint64_t table = mem.read_ptr(dict + o.dict_table, &ok);
    std::vector<uint64_t> raw((mask + 1) * 3);
    if (!ok || !mem.read(table, raw.data(), raw.size() * 8)) return false;
    for (int64_t i = 0; i <= mask; ++i)
      if (raw[i * 3 + 1] && raw[i * 3 + 2] && is_name_key(mem, o, raw[i * 3 + 1]))
        return value_string(mem, o, raw[i * 3 + 2], out);
    return false;
  }
  uint64_t keys = mem.read_ptr(dict + o.dict_keys, &ok);
  if (!ok || !keys) return false;
  uint64_t values = mem.read_ptr(dict + o.dict_values, &ok);
  if (!ok) return false;
  if (values) return name_from_split(mem, o, keys, values, out);
  int64_t index = -1;
  uint64_t value = 0;
  return find_in_keys(mem, o, keys, &index, &value) && value_string(mem, o, value, out);
}
}  // namespace

bool read_thread_object_name(SnapshotCache& mem, const PyOffsets& o, uint64_t obj, std::string* out) {
  bool ok = false;
  uint64_t type = mem.read_ptr(obj + o.object_type, &ok);
  if (!ok || !type) return false;
  uint64_t flags = 0;
  if (o.major == 3 && o.minor >= 11 && o.type_flags >= 0 && mem.read_value(type + o.type_flags, &flags)) {
    int64_t managed = o.managed_dict_offset != -1 ? o.managed_dict_offset : -3 * 8;
    if (o.minor >= 13 && (flags & kTpflagsInlineValues)) {
      uint64_t dict = mem.read_ptr(obj + managed, &ok);
      if (ok && dict) return name_from_dict(mem, o, dict, out);
      int64_t basicsize = 0;
      if (!mem.read_value(type + o.type_basicsize, &basicsize) || basicsize <= 0 || basicsize > 4096) return false;
      uint64_t values = obj + basicsize;
      uint8_t valid = 0;
      if (!mem.read_value(values + 3, &valid) || !valid) return false;  // _dictvalues.valid
      uint64_t keys = mem.read_ptr(type + o.heaptype_cached_keys, &ok);
      return ok && keys && name_from_split(mem, o, keys, values, out);
    }
    if (flags & kTpflagsManagedDict) {
      uint64_t word = mem.read_ptr(obj + managed, &ok);
      if (!ok) return false;
      if (o.minor == 12) {
        // PyDictOrValues: an odd word is (values - 1), an even one a dict.
        if (word & 1) {
          uint64_t keys = mem.read_ptr(type + o.heaptype_cached_keys, &ok);
          return ok && keys && name_from_split(mem, o, keys, word + 1, out);
        }
        return name_from_dict(mem, o, word, out);
      }
      if (word) return name_from_dict(mem, o, word, out);
      // 3.11 keeps the values array pointer one word before the dict pointer.
      uint64_t values = mem.read_ptr(obj + managed - 8, &ok);
      uint64_t keys = ok && values ? mem.read_ptr(type + o.heaptype_cached_keys, &ok) : 0;
      return ok && keys && name_from_split(mem, o, keys, values, out);
    }
  }
  int64_t dictoffset = 0;
  if (!mem.read_value(type + o.type_dictoffset, &dictoffset) || dictoffset <= 0 || dictoffset > 4096) return false;
  uint64_t dict = mem.read_ptr(obj + dictoffset, &ok);
  return ok && name_from_dict(mem, o, dict, out);
}

}  // namespace periscope
