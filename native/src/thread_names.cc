#include "thread_names.h"

#include <vector>

#include "python_strings.h"

namespace periscope {

namespace {
constexpr uint64_t kTpflagsInlineValues = 1ULL << 2;  // 3.13+
constexpr uint64_t kTpflagsManagedDict = 1ULL << 4;   // 3.11+
constexpr int64_t kMaxEntries = 1 << 14;               // sys.modules of a large service fits

// Which keys a lookup wants: a Thread's name is "_name" ("_Thread__name" in
// 2.7, where Thread.__name is mangled); module globals have one name.
using KeyMatch = bool (*)(const std::string&);
bool thread_name_key(const std::string& s) { return s == "_name" || s == "_Thread__name"; }
bool threading_key(const std::string& s) { return s == "threading"; }
bool main_thread_key(const std::string& s) { return s == "_main_thread"; }
bool shutdown_key(const std::string& s) { return s == "_shutdown"; }

bool key_matches(SnapshotCache& mem, const Layout& o, uint64_t key, KeyMatch match) {
  std::string s;
  return read_py_string(mem, o, key, &s) && match(s);
}

// Finds the entry index of a matching key in a dict-keys object (3.6+) and
// the value stored in the entry itself (0 for split tables).
bool find_in_keys(SnapshotCache& mem, const Layout& o, uint64_t keys, KeyMatch match, int64_t* index,
                  uint64_t* entry_value) {
  int64_t nentries = 0;
  uint64_t entries;
  size_t entry_size, key_at, value_at;
  if (o.dictkeys_log2_index_bytes >= 0) {  // 3.11+: log2 sizes and a kind
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
    if (key && key_matches(mem, o, key, match)) {
      *index = i;
      *entry_value = *reinterpret_cast<uint64_t*>(&raw[i * entry_size + value_at]);
      return true;
    }
  }
  return false;
}

uint64_t get_from_split(SnapshotCache& mem, const Layout& o, uint64_t keys, uint64_t values, KeyMatch match) {
  int64_t index = -1;
  uint64_t unused = 0;
  if (!find_in_keys(mem, o, keys, match, &index, &unused)) return 0;
  bool ok = false;
  uint64_t value = mem.read_ptr(values + (o.dictvalues_values > 0 ? o.dictvalues_values : 0) + 8 * index, &ok);
  return ok ? value : 0;
}

// The value stored under a matching key in a dict object, 0 if none.
uint64_t dict_get(SnapshotCache& mem, const Layout& o, uint64_t dict, KeyMatch match) {
  if (!dict) return 0;
  bool ok = false;
  if (o.features.traits.instance_dict == InstanceDict::kDict27) {
    int64_t mask = 0;
    if (!mem.read_value(dict + o.dict_mask, &mask) || mask < 0 || mask >= kMaxEntries) return 0;
    uint64_t table = mem.read_ptr(dict + o.dict_table, &ok);
    std::vector<uint64_t> raw((mask + 1) * 3);
    if (!ok || !mem.read(table, raw.data(), raw.size() * 8)) return 0;
    for (int64_t i = 0; i <= mask; ++i)
      if (raw[i * 3 + 1] && raw[i * 3 + 2] && key_matches(mem, o, raw[i * 3 + 1], match)) return raw[i * 3 + 2];
    return 0;
  }
  uint64_t keys = mem.read_ptr(dict + o.dict_keys, &ok);
  if (!ok || !keys) return 0;
  uint64_t values = mem.read_ptr(dict + o.dict_values, &ok);
  if (!ok) return 0;
  if (values) return get_from_split(mem, o, keys, values, match);
  int64_t index = -1;
  uint64_t value = 0;
  return find_in_keys(mem, o, keys, match, &index, &value) ? value : 0;
}

// An instance attribute of a plain Python object, wherever this version
// keeps instance attributes; 0 if absent or unreadable.
uint64_t instance_attr(SnapshotCache& mem, const Layout& o, uint64_t obj, KeyMatch match) {
  bool ok = false;
  uint64_t type = mem.read_ptr(obj + o.object_type, &ok);
  if (!ok || !type) return 0;
  const InstanceDict model = o.features.traits.instance_dict;
  uint64_t flags = 0;
  bool managed_model = model == InstanceDict::kManaged311 || model == InstanceDict::kDictOrValues312 ||
                       model == InstanceDict::kInlineValues313;
  if (managed_model && o.type_flags >= 0 && mem.read_value(type + o.type_flags, &flags)) {
    int64_t managed = o.managed_dict_offset;
    if (model == InstanceDict::kInlineValues313 && (flags & kTpflagsInlineValues)) {
      uint64_t dict = mem.read_ptr(obj + managed, &ok);
      if (ok && dict) return dict_get(mem, o, dict, match);
      int64_t basicsize = 0;
      if (!mem.read_value(type + o.type_basicsize, &basicsize) || basicsize <= 0 || basicsize > 4096) return 0;
      uint64_t values = obj + basicsize;
      uint8_t valid = 0;
      if (!mem.read_value(values + 3, &valid) || !valid) return 0;  // _dictvalues.valid
      uint64_t keys = mem.read_ptr(type + o.heaptype_cached_keys, &ok);
      return ok && keys ? get_from_split(mem, o, keys, values, match) : 0;
    }
    if (flags & kTpflagsManagedDict) {
      uint64_t word = mem.read_ptr(obj + managed, &ok);
      if (!ok) return 0;
      if (model == InstanceDict::kDictOrValues312) {
        // PyDictOrValues: an odd word is (values - 1), an even one a dict.
        if (word & 1) {
          uint64_t keys = mem.read_ptr(type + o.heaptype_cached_keys, &ok);
          return ok && keys ? get_from_split(mem, o, keys, word + 1, match) : 0;
        }
        return dict_get(mem, o, word, match);
      }
      if (word) return dict_get(mem, o, word, match);
      if (model != InstanceDict::kManaged311) return 0;
      // 3.11 keeps the values array pointer one word before the dict pointer.
      uint64_t values = mem.read_ptr(obj + managed - 8, &ok);
      uint64_t keys = ok && values ? mem.read_ptr(type + o.heaptype_cached_keys, &ok) : 0;
      return ok && keys ? get_from_split(mem, o, keys, values, match) : 0;
    }
  }
  int64_t dictoffset = 0;
  if (!mem.read_value(type + o.type_dictoffset, &dictoffset) || dictoffset <= 0 || dictoffset > 4096) return 0;
  uint64_t dict = mem.read_ptr(obj + dictoffset, &ok);
  return ok ? dict_get(mem, o, dict, match) : 0;
}
}  // namespace

bool read_thread_object_name(SnapshotCache& mem, const Layout& o, uint64_t obj, std::string* out) {
  uint64_t name = instance_attr(mem, o, obj, thread_name_key);
  return name && read_py_string(mem, o, name, out);
}

bool read_main_thread_name(SnapshotCache& mem, const Layout& o, uint64_t interp, std::string* out) {
  if (o.interp_modules < 0 || o.module_dict < 0 || !interp) return false;
  bool ok = false;
  uint64_t modules = mem.read_ptr(interp + o.interp_modules, &ok);
  uint64_t threading = ok ? dict_get(mem, o, modules, threading_key) : 0;
  uint64_t globals = threading ? mem.read_ptr(threading + o.module_dict, &ok) : 0;
  if (!ok || !globals) return false;
  uint64_t main_thread = dict_get(mem, o, globals, main_thread_key);
  // 2.7 has no _main_thread; its _shutdown is the main thread's bound
  // _exitfunc, whose __self__ is the main Thread object.
  if (!main_thread && o.method_self >= 0) {
    uint64_t shutdown = dict_get(mem, o, globals, shutdown_key);
    std::string type;
    if (shutdown && read_type_name(mem, o, shutdown, &type) && type == "instancemethod")
      main_thread = mem.read_ptr(shutdown + o.method_self, &ok);
  }
  return main_thread && read_thread_object_name(mem, o, main_thread, out);
}

}  // namespace periscope
