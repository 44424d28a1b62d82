#include "debug_offsets.h"

#include <cstring>

namespace periscope {

namespace {
// Field order of _Py_DebugOffsets as CPython 3.13 defines it (all uint64).
// Each group starts with the size of the struct it describes.
struct DebugOffsets313 {
  char cookie[8];
  uint64_t version, free_threaded;
  struct { uint64_t size, finalizing, interpreters_head; } runtime_state;
  struct {
    uint64_t size, id, next, threads_head, gc, imports_modules, sysdict, builtins, ceval_gil,
        gil_runtime_state, gil_runtime_state_enabled, gil_runtime_state_locked, gil_runtime_state_holder;
  } interpreter_state;
  struct { uint64_t size, prev, next, interp, current_frame, thread_id, native_thread_id, datastack_chunk, status; } thread_state;
  struct { uint64_t size, previous, executable, instr_ptr, localsplus, owner; } interpreter_frame;
  struct {
    uint64_t size, filename, name, qualname, linetable, firstlineno, argcount, localsplusnames, localspluskinds,
        co_code_adaptive;
  } code_object;
  struct { uint64_t size, ob_type; } pyobject;
  struct { uint64_t size, tp_name, tp_repr, tp_flags; } type_object;
  struct { uint64_t size, ob_item, ob_size; } tuple_object;
  struct { uint64_t size, ob_item, ob_size; } list_object;
  struct { uint64_t size, ma_keys, ma_values; } dict_object;
  struct { uint64_t size, ob_fval; } float_object;
  struct { uint64_t size, lv_tag, ob_digit; } long_object;
  struct { uint64_t size, ob_size, ob_sval; } bytes_object;
  struct { uint64_t size, state, length, asciiobject_size; } unicode_object;
  struct { uint64_t size, collecting; } gc;
};

int64_t field(uint64_t v) {
  // A sane struct offset is small; anything else means we misread the layout.
  return v < (1u << 20) ? static_cast<int64_t>(v) : -1;
}
}  // namespace

bool read_debug_offsets(const RemoteMemory& mem, uint64_t runtime, int minor, const PyOffsets* fallback,
                        PyOffsets* out) {
  if (minor != 13) return false;
  DebugOffsets313 d{};
  if (!mem.read(runtime, &d, sizeof d)) return false;
  if (std::memcmp(d.cookie, kDebugCookie, 8) != 0) return false;
  if (((d.version >> 24) & 0xff) != 3 || ((d.version >> 16) & 0xff) != static_cast<uint64_t>(minor)) return false;
  if (d.free_threaded) return false;  // free-threaded builds keep frames elsewhere

  PyOffsets o = fallback ? *fallback : PyOffsets{};
  o.major = 3;
  o.minor = minor;
  o.runtime_interpreters_head = field(d.runtime_state.interpreters_head);
  o.runtime_gilstate_tstate_current = -1;
  o.interp_next = field(d.interpreter_state.next);
  o.interp_tstate_head = field(d.interpreter_state.threads_head);
  // 3.13 describes the GIL state embedded in the interpreter itself.
  o.interp_gil = -1;
  o.gil_locked = field(d.interpreter_state.gil_runtime_state_locked);
  o.gil_last_holder = field(d.interpreter_state.gil_runtime_state_holder);
  o.tstate_next = field(d.thread_state.next);
  o.tstate_interp = field(d.thread_state.interp);
  o.tstate_frame = o.tstate_cframe = o.cframe_current_frame = -1;
  o.tstate_current_frame = field(d.thread_state.current_frame);
  o.tstate_thread_id = field(d.thread_state.thread_id);
  o.tstate_native_thread_id = field(d.thread_state.native_thread_id);
  o.iframe_previous = field(d.interpreter_frame.previous);
  o.iframe_code = field(d.interpreter_frame.executable);
  o.iframe_instr = field(d.interpreter_frame.instr_ptr);
  o.iframe_owner = field(d.interpreter_frame.owner);
  o.iframe_localsplus = field(d.interpreter_frame.localsplus);
  o.code_name = field(d.code_object.name);
  o.code_qualname = field(d.code_object.qualname);
  o.code_filename = field(d.code_object.filename);
  o.code_firstlineno = field(d.code_object.firstlineno);
  o.code_linetable = field(d.code_object.linetable);
  o.code_lnotab = -1;
  o.code_code = -1;
  o.code_code_adaptive = field(d.code_object.co_code_adaptive);
  o.code_argcount = field(d.code_object.argcount);
  o.code_localsplusnames = field(d.code_object.localsplusnames);
  o.object_type = field(d.pyobject.ob_type);
  o.type_name = field(d.type_object.tp_name);
  o.type_flags = field(d.type_object.tp_flags);
  o.tuple_items = field(d.tuple_object.ob_item);
  o.tuple_size = field(d.tuple_object.ob_size);
  o.dict_keys = field(d.dict_object.ma_keys);
  o.dict_values = field(d.dict_object.ma_values);
  o.bytes_size = field(d.bytes_object.ob_size);
  o.bytes_data = field(d.bytes_object.ob_sval);
  o.unicode_state = field(d.unicode_object.state);
  o.unicode_length = field(d.unicode_object.length);
  o.unicode_ascii_size = field(d.unicode_object.asciiobject_size);
  // sizeof(PyCompactUnicodeObject) is not published; it is PyASCIIObject
  // plus utf8_length and utf8 (two words) on every 3.x layout.
  if (o.unicode_ascii_size > 0) o.unicode_compact_size = o.unicode_ascii_size + 16;
  bool complete = o.runtime_interpreters_head >= 0 && o.interp_tstate_head >= 0 && o.tstate_next >= 0 &&
                  o.tstate_current_frame >= 0 && o.iframe_previous >= 0 && o.iframe_code >= 0 &&
                  o.code_name >= 0 && o.code_filename >= 0 && o.code_linetable >= 0;
  if (!complete) return false;
  *out = o;
  return true;
}

}  // namespace periscope
