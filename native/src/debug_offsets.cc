#include "debug_offsets.h"

#include <cstring>
#include <map>
#include <vector>

namespace periscope {

namespace {

// _Py_DebugOffsets is a cookie[8] followed by uint64 words: version,
// free_threaded, then one section per struct. A sized section starts with
// sizeof the struct it describes; a few small ones carry no size.
struct SectionSpec {
  const char* name;
  bool sized;
  std::vector<const char*> fields;
};
using TableShape = std::vector<SectionSpec>;

// The field order of each branch's Include/internal/pycore_debug_offsets.h.
const TableShape& shape_313() {
  static const TableShape s = {
      {"runtime_state", true, {"finalizing", "interpreters_head"}},
      {"interpreter_state", true,
       {"id", "next", "threads_head", "gc", "imports_modules", "sysdict", "builtins", "ceval_gil",
        "gil_runtime_state", "gil_runtime_state_enabled", "gil_runtime_state_locked", "gil_runtime_state_holder"}},
      {"thread_state", true,
       {"prev", "next", "interp", "current_frame", "thread_id", "native_thread_id", "datastack_chunk", "status"}},
      {"interpreter_frame", true, {"previous", "executable", "instr_ptr", "localsplus", "owner"}},
      {"code_object", true,
       {"filename", "name", "qualname", "linetable", "firstlineno", "argcount", "localsplusnames", "localspluskinds",
        "co_code_adaptive"}},
      {"pyobject", true, {"ob_type"}},
      {"type_object", true, {"tp_name", "tp_repr", "tp_flags"}},
      {"tuple_object", true, {"ob_item", "ob_size"}},
      {"list_object", true, {"ob_item", "ob_size"}},
      {"dict_object", true, {"ma_keys", "ma_values"}},
      {"float_object", true, {"ob_fval"}},
      {"long_object", true, {"lv_tag", "ob_digit"}},
      {"bytes_object", true, {"ob_size", "ob_sval"}},
      {"unicode_object", true, {"state", "length", "asciiobject_size"}},
      {"gc", true, {"collecting"}},
  };
  return s;
}

const TableShape& shape_314() {
  static const TableShape s = {
      {"runtime_state", true, {"finalizing", "interpreters_head"}},
      {"interpreter_state", true,
       {"id", "next", "threads_head", "threads_main", "gc", "imports_modules", "sysdict", "builtins", "ceval_gil",
        "gil_runtime_state", "gil_runtime_state_enabled", "gil_runtime_state_locked", "gil_runtime_state_holder",
        "code_object_generation", "tlbc_generation"}},
      {"thread_state", true,
       {"prev", "next", "interp", "current_frame", "thread_id", "native_thread_id", "datastack_chunk", "status"}},
      {"interpreter_frame", true,
       {"previous", "executable", "instr_ptr", "localsplus", "owner", "stackpointer", "tlbc_index"}},
      {"code_object", true,
       {"filename", "name", "qualname", "linetable", "firstlineno", "argcount", "localsplusnames", "localspluskinds",
        "co_code_adaptive", "co_tlbc"}},
      {"pyobject", true, {"ob_type"}},
      {"type_object", true, {"tp_name", "tp_repr", "tp_flags"}},
      {"tuple_object", true, {"ob_item", "ob_size"}},
      {"list_object", true, {"ob_item", "ob_size"}},
      {"set_object", true, {"used", "table", "mask"}},
      {"dict_object", true, {"ma_keys", "ma_values"}},
      {"float_object", true, {"ob_fval"}},
      {"long_object", true, {"lv_tag", "ob_digit"}},
      {"bytes_object", true, {"ob_size", "ob_sval"}},
      {"unicode_object", true, {"state", "length", "asciiobject_size"}},
      {"gc", true, {"collecting"}},
      {"gen_object", true, {"gi_name", "gi_iframe", "gi_frame_state"}},
      {"llist_node", false, {"next", "prev"}},
      {"debugger_support", false,
       {"eval_breaker", "remote_debugger_support", "remote_debugging_enabled", "debugger_pending_call",
        "debugger_script_path", "debugger_script_path_size"}},
  };
  return s;
}

const TableShape& shape_315() {
  static const TableShape s = {
      {"runtime_state", true, {"finalizing", "interpreters_head"}},
      {"interpreter_state", true,
       {"id", "next", "threads_head", "threads_main", "gc", "imports_modules", "sysdict", "builtins", "ceval_gil",
        "gil_runtime_state", "gil_runtime_state_enabled", "gil_runtime_state_locked", "gil_runtime_state_holder",
        "code_object_generation", "tlbc_generation"}},
      {"thread_state", true,
       {"prev", "next", "interp", "current_frame", "base_frame", "last_profiled_frame", "last_profiled_frame_seq",
        "thread_id", "native_thread_id", "datastack_chunk", "status", "holds_gil", "gil_requested",
        "current_exception", "exc_state"}},
      {"err_stackitem", false, {"exc_value"}},
      {"interpreter_frame", true,
       {"previous", "executable", "instr_ptr", "localsplus", "owner", "stackpointer", "tlbc_index"}},
      {"code_object", true,
       {"filename", "name", "qualname", "linetable", "firstlineno", "argcount", "localsplusnames", "localspluskinds",
        "co_code_adaptive", "co_tlbc"}},
      {"pyobject", true, {"ob_type"}},
      {"type_object", true, {"tp_name", "tp_repr", "tp_flags", "tp_basicsize", "tp_dictoffset"}},
      {"heap_type_object", true, {"ht_cached_keys"}},
      {"tuple_object", true, {"ob_item", "ob_size"}},
      {"list_object", true, {"ob_item", "ob_size"}},
      {"set_object", true, {"used", "table", "mask"}},
      {"dict_object", true, {"ma_keys", "ma_values"}},
      {"float_object", true, {"ob_fval"}},
      {"long_object", true, {"lv_tag", "ob_digit"}},
      {"bytes_object", true, {"ob_size", "ob_sval"}},
      {"unicode_object", true, {"state", "length", "asciiobject_size", "compactunicodeobject_size"}},
      {"gc", true, {"collecting", "frame", "generation_stats_size", "generation_stats"}},
      {"gen_object", true, {"gi_name", "gi_iframe", "gi_frame_state"}},
      {"llist_node", false, {"next", "prev"}},
      {"debugger_support", false,
       {"eval_breaker", "remote_debugger_support", "remote_debugging_enabled", "debugger_pending_call",
        "debugger_script_path", "debugger_script_path_size"}},
  };
  return s;
}

const TableShape& shape_for(int minor) {
  if (minor == 13) return shape_313();
  if (minor == 14) return shape_314();
  return shape_315();
}

constexpr uint64_t kHeaderBytes = 8 + 8 + 8;        // cookie, version, free_threaded
constexpr uint64_t kMaxStructSize = 16ULL << 20;    // _PyRuntimeState is ~350 KiB

// The table as read from the target, addressable by "section.field".
class Table {
 public:
  Table(const TableShape& shape, const std::vector<uint64_t>& words) {
    size_t i = 0;
    for (const SectionSpec& s : shape) {
      if (s.sized) sizes_[s.name] = words[i++];
      for (const char* f : s.fields) values_[std::string(s.name) + "." + f] = words[i++];
    }
  }
  static size_t word_count(const TableShape& shape) {
    size_t n = 0;
    for (const SectionSpec& s : shape) n += (s.sized ? 1 : 0) + s.fields.size();
    return n;
  }
  uint64_t value(const std::string& key) const { return values_.at(key); }
  uint64_t size(const std::string& section) const { return sizes_.at(section); }

 private:
  std::map<std::string, uint64_t> values_;
  std::map<std::string, uint64_t> sizes_;
};

// Checks and converts each field the reader uses; the first failure is kept.
class Checker {
 public:
  explicit Checker(const Table& t) : t_(t) {}
  // An offset of a `width`-byte member inside the section's struct.
  int64_t member(const char* section, const char* field, uint64_t width) {
    std::string key = std::string(section) + "." + field;
    uint64_t size = t_.size(section), v = t_.value(key);
    if (size == 0 || size > kMaxStructSize) return fail(key, "its section reports an implausible struct size " + std::to_string(size));
    if (v + width > size) return fail(key, "offset " + std::to_string(v) + " lies outside its " + std::to_string(size) + "-byte struct");
    if (v % std::min<uint64_t>(width, 8) != 0) return fail(key, "offset " + std::to_string(v) + " is not aligned");
    return static_cast<int64_t>(v);
  }
  // A size the table reports, within [lo, hi].
  int64_t size_of(const char* section, uint64_t lo, uint64_t hi) {
    uint64_t v = t_.size(section);
    if (v < lo || v > hi) return fail(std::string(section) + ".size", "implausible value " + std::to_string(v));
    return static_cast<int64_t>(v);
  }
  // A plain number the table reports (not an offset into its own section).
  int64_t number(const char* section, const char* field, uint64_t lo, uint64_t hi) {
    std::string key = std::string(section) + "." + field;
    uint64_t v = t_.value(key);
    if (v < lo || v > hi) return fail(key, "implausible value " + std::to_string(v));
    return static_cast<int64_t>(v);
  }
  bool ok() const { return error_.empty(); }
  const std::string& error() const { return error_; }

 private:
  int64_t fail(const std::string& key, const std::string& what) {
    if (error_.empty()) error_ = "_Py_DebugOffsets field " + key + ": " + what;
    return -1;
  }
  const Table& t_;
  std::string error_;
};

}  // namespace

bool read_debug_offsets(const RemoteMemory& mem, uint64_t runtime, int minor, const PyOffsets* fallback,
                        Layout* out, std::string* why) {
  auto refuse = [&](const std::string& reason) { *why = reason; return false; };
  if (minor < 13) return refuse("versions before 3.13 publish no _Py_DebugOffsets");
  const TableShape& shape = shape_for(minor);
  size_t words = Table::word_count(shape);
  std::vector<uint8_t> raw(kHeaderBytes + words * 8);
  if (!mem.read(runtime, raw.data(), raw.size())) return refuse("_PyRuntime could not be read");
  if (std::memcmp(raw.data(), kDebugCookie, 8) != 0) return refuse("_PyRuntime does not start with the xdebugpy cookie");
  uint64_t version = 0, free_threaded = 0;
  std::memcpy(&version, raw.data() + 8, 8);
  std::memcpy(&free_threaded, raw.data() + 16, 8);
  uint64_t t_major = (version >> 24) & 0xff, t_minor = (version >> 16) & 0xff;
  if (t_major != 3 || t_minor != static_cast<uint64_t>(minor))
    return refuse("its version word 0x" + [&] { char b[20]; snprintf(b, sizeof b, "%08llx", static_cast<unsigned long long>(version)); return std::string(b); }() +
                  " does not match Python 3." + std::to_string(minor));
  bool final_release = (version & 0xf0) == 0xf0;
  if (minor > kNewestKnownDebugLayout && !final_release)
    return refuse("3." + std::to_string(minor) + " pre-releases may still change the table's layout; this agent knows the "
                  "layouts of 3.13 to 3." + std::to_string(kNewestKnownDebugLayout) + " and reads newer final releases "
                  "that keep the 3." + std::to_string(kNewestKnownDebugLayout) + " shape");
  if (free_threaded > 1) return refuse("its free_threaded flag is " + std::to_string(free_threaded));
  std::vector<uint64_t> w(words);
  std::memcpy(w.data(), raw.data() + kHeaderBytes, words * 8);
  Table t(shape, w);
  Checker c(t);
  const bool v314 = minor >= 14, v315 = minor >= 15, ft = free_threaded == 1;

  Layout L;
  static_cast<PyOffsets&>(L) = fallback ? *fallback : PyOffsets{};
  PyOffsets& o = L;
  o.major = 3;
  o.minor = minor;
  int64_t pyobject_size = c.size_of("pyobject", 16, 64);
  o.object_type = c.member("pyobject", "ob_type", 8);
  o.runtime_interpreters_head = c.member("runtime_state", "interpreters_head", 8);
  o.runtime_gilstate_tstate_current = -1;
  o.interp_next = c.member("interpreter_state", "next", 8);
  o.interp_tstate_head = c.member("interpreter_state", "threads_head", 8);
  o.interp_modules = c.member("interpreter_state", "imports_modules", 8);
  // The GIL offsets are published relative to the interpreter's own _gil;
  // the reader follows ceval.gil (which may point at another interpreter's
  // GIL) and reads relative to that struct.
  o.interp_gil = c.member("interpreter_state", "ceval_gil", 8);
  int64_t gil_base = c.member("interpreter_state", "gil_runtime_state", 8);
  int64_t locked = c.member("interpreter_state", "gil_runtime_state_locked", 4);
  int64_t holder = c.member("interpreter_state", "gil_runtime_state_holder", 8);
  o.gil_locked = gil_base >= 0 && locked >= gil_base ? locked - gil_base : -1;
  o.gil_last_holder = gil_base >= 0 && holder >= gil_base ? holder - gil_base : -1;
  if (ft) L.dbg.gil_enabled = c.number("interpreter_state", "gil_runtime_state_enabled", 0, 4096);
  o.tstate_next = c.member("thread_state", "next", 8);
  o.tstate_interp = c.member("thread_state", "interp", 8);
  o.tstate_frame = o.tstate_cframe = o.cframe_current_frame = -1;
  o.tstate_current_frame = c.member("thread_state", "current_frame", 8);
  o.tstate_thread_id = c.member("thread_state", "thread_id", 8);
  o.tstate_native_thread_id = c.member("thread_state", "native_thread_id", 8);
  if (v315) {
    L.dbg.tstate_base_frame = c.member("thread_state", "base_frame", 8);
    L.dbg.tstate_holds_gil = c.member("thread_state", "holds_gil", 4);
  }
  o.frame_back = o.frame_code = o.frame_lasti = o.frame_lineno = o.frame_localsplus = -1;
  o.iframe_previous = c.member("interpreter_frame", "previous", 8);
  o.iframe_code = c.member("interpreter_frame", "executable", 8);
  o.iframe_instr = c.member("interpreter_frame", "instr_ptr", 8);
  o.iframe_owner = c.member("interpreter_frame", "owner", 1);
  o.iframe_localsplus = c.member("interpreter_frame", "localsplus", 8);
  o.code_name = c.member("code_object", "name", 8);
  o.code_qualname = c.member("code_object", "qualname", 8);
  o.code_filename = c.member("code_object", "filename", 8);
  o.code_firstlineno = c.member("code_object", "firstlineno", 4);
  o.code_linetable = c.member("code_object", "linetable", 8);
  o.code_lnotab = o.code_code = o.code_varnames = -1;
  o.code_argcount = c.member("code_object", "argcount", 4);
  o.code_localsplusnames = c.member("code_object", "localsplusnames", 8);
  // co_code_adaptive is the bytecode itself: a flexible array at the end.
  o.code_code_adaptive = c.member("code_object", "co_code_adaptive", 1);
  if (v314 && ft) {
    L.dbg.iframe_tlbc_index = c.member("interpreter_frame", "tlbc_index", 4);
    L.dbg.code_tlbc = c.member("code_object", "co_tlbc", 8);
  }
  o.type_name = c.member("type_object", "tp_name", 8);
  o.type_flags = c.member("type_object", "tp_flags", 8);
  o.tuple_items = c.member("tuple_object", "ob_item", 8);
  o.tuple_size = c.member("tuple_object", "ob_size", 8);
  o.dict_keys = c.member("dict_object", "ma_keys", 8);
  o.dict_values = c.member("dict_object", "ma_values", 8);
  o.bytes_size = c.member("bytes_object", "ob_size", 8);
  o.bytes_data = c.member("bytes_object", "ob_sval", 1);
  o.unicode_state = c.member("unicode_object", "state", 4);
  o.unicode_length = c.member("unicode_object", "length", 8);
  o.unicode_ascii_size = c.number("unicode_object", "asciiobject_size", 16, 256);
  o.module_dict = pyobject_size;  // PyModuleObject: the object header, then md_dict

  // Object-relative fields the table lacks before 3.15 come from the GIL
  // build's generated table: a free-threaded object header is larger (the
  // table says by how much), and its managed dict sits right before the
  // object, with no PyGC_Head in between.
  int64_t header_growth = fallback && o.object_type >= 0 ? o.object_type - fallback->object_type : 0;
  if (v315) {
    o.type_basicsize = c.member("type_object", "tp_basicsize", 8);
    o.type_dictoffset = c.member("type_object", "tp_dictoffset", 8);
    o.heaptype_cached_keys = c.member("heap_type_object", "ht_cached_keys", 8);
    o.unicode_compact_size = c.number("unicode_object", "compactunicodeobject_size", 16, 256);
  } else {
    if (fallback) {
      o.type_basicsize = fallback->type_basicsize + header_growth;
      o.type_dictoffset = fallback->type_dictoffset + header_growth;
      o.heaptype_cached_keys = fallback->heaptype_cached_keys + header_growth;
    }
    // PyCompactUnicodeObject is PyASCIIObject plus utf8_length and utf8.
    if (o.unicode_ascii_size > 0) o.unicode_compact_size = o.unicode_ascii_size + 16;
  }
  if (fallback) o.method_self = fallback->method_self + header_growth;
  if (fallback && ft) o.managed_dict_offset = fallback->managed_dict_offset + 2 * 8;

  if (!c.ok()) return refuse(c.error());

  // Fields only asyncio task stacks use: checked on their own, so a table
  // that fails only these still dumps threads (task dumps then say why).
  if (v314) {
    Checker a(t);
    DebugOnlyOffsets& d = L.dbg;
    d.gen_iframe = a.member("gen_object", "gi_iframe", 8);
    d.gen_frame_state = a.member("gen_object", "gi_frame_state", 1);
    d.iframe_stackpointer = a.member("interpreter_frame", "stackpointer", 8);
    d.set_used = a.member("set_object", "used", 8);
    d.set_table = a.member("set_object", "table", 8);
    d.set_mask = a.member("set_object", "mask", 8);
    d.long_tag = a.member("long_object", "lv_tag", 8);
    d.long_digits = a.member("long_object", "ob_digit", 4);
    // struct llist_node {next, prev} carries no size: next is one of its two words.
    int64_t next = a.number("llist_node", "next", 0, 8);
    d.llist_next = next >= 0 && next % 8 == 0 ? next : -1;
    if (a.ok() && d.llist_next < 0) L.asyncio_error = "_Py_DebugOffsets field llist_node.next is not aligned";
    else if (!a.ok()) L.asyncio_error = a.error();
    // The frame is embedded at the end of the generator: it must leave room for one.
    else if (d.gen_iframe < d.gen_frame_state && d.gen_frame_state < d.gen_iframe + o.iframe_localsplus)
      L.asyncio_error = "_Py_DebugOffsets gen_object fields overlap its frame";
    if (!L.asyncio_error.empty())
      d.gen_iframe = d.gen_frame_state = d.iframe_stackpointer = d.set_used = d.set_table = d.set_mask = d.llist_next =
          d.long_tag = d.long_digits = -1;
  } else {
    L.asyncio_error = "asyncio task introspection needs Python 3.14 or newer";
  }
  if (o.code_code_adaptive <= o.code_linetable || o.unicode_compact_size <= o.unicode_ascii_size)
    return refuse("_Py_DebugOffsets code/unicode fields are inconsistent with each other");

  const VersionTraits* traits = traits_for(3, minor);
  if (!traits) return refuse("no version traits for 3." + std::to_string(minor));
  L.features = features_for(*traits, ft, L.dbg);
  *out = L;
  return true;
}

}  // namespace periscope
