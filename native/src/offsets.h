// Struct offsets the reader needs inside a target CPython, one record per
// minor version. For 3.13+ they come from the target's own _Py_DebugOffsets
// at run time (debug_offsets.cc); for older versions from the table in
// generated/offsets_table.h, produced by native/tools/gen-offsets.ts, which
// compiles native/tools/probe.c against each installed version's internal
// headers. -1 means "this version has no such field".
#pragma once
#include <cstdint>

namespace periscope {

struct PyOffsets {
  int major = 0, minor = 0;

  // _PyRuntimeState (3.7+)
  int64_t runtime_interpreters_head = -1;     // interpreters.head
  int64_t runtime_gilstate_tstate_current = -1;  // gilstate.tstate_current (3.7-3.11)

  // PyInterpreterState
  int64_t interp_next = -1;
  int64_t interp_tstate_head = -1;  // tstate_head (<=3.11) / threads.head (3.12+)
  int64_t interp_modules = -1;      // modules (<=3.11) / imports.modules (3.12+): sys.modules
  int64_t interp_gil = -1;          // 3.12+: ceval.gil (pointer to _gil_runtime_state)
  int64_t gil_last_holder = -1;     // 3.12+: _gil_runtime_state.last_holder
  int64_t gil_locked = -1;          // 3.12+: _gil_runtime_state.locked

  // PyThreadState
  int64_t tstate_next = -1;
  int64_t tstate_interp = -1;
  int64_t tstate_frame = -1;           // <=3.10: PyFrameObject *frame
  int64_t tstate_cframe = -1;          // 3.11-3.12: _PyCFrame *cframe
  int64_t cframe_current_frame = -1;   // 3.11-3.12: _PyCFrame.current_frame
  int64_t tstate_current_frame = -1;   // 3.13+: _PyInterpreterFrame *current_frame
  int64_t tstate_thread_id = -1;       // pthread_t as unsigned long
  int64_t tstate_native_thread_id = -1;  // 3.11+

  // PyFrameObject (<=3.10)
  int64_t frame_back = -1;
  int64_t frame_code = -1;
  int64_t frame_lasti = -1;     // int f_lasti (bytes <=3.9, code units 3.10)
  int64_t frame_lineno = -1;    // int f_lineno (valid only while tracing)
  int64_t frame_localsplus = -1;

  // _PyInterpreterFrame (3.11+)
  int64_t iframe_previous = -1;
  int64_t iframe_code = -1;        // f_code (3.11-3.12) / f_executable (3.13+)
  int64_t iframe_instr = -1;       // prev_instr (3.11-3.12) / instr_ptr (3.13+)
  int64_t iframe_owner = -1;       // char owner
  int64_t iframe_localsplus = -1;

  // PyCodeObject
  int64_t code_name = -1;
  int64_t code_qualname = -1;      // 3.11+
  int64_t code_filename = -1;
  int64_t code_firstlineno = -1;
  int64_t code_lnotab = -1;        // <=3.9: bytes co_lnotab
  int64_t code_linetable = -1;     // 3.10+: bytes co_linetable
  int64_t code_code = -1;          // <=3.10: bytes co_code
  int64_t code_code_adaptive = -1; // 3.11+: inline bytecode start
  int64_t code_argcount = -1;
  int64_t code_varnames = -1;       // <=3.10: tuple co_varnames
  int64_t code_localsplusnames = -1;  // 3.11+: tuple co_localsplusnames

  // Objects
  int64_t object_type = -1;        // ob_type
  int64_t module_dict = -1;        // PyModuleObject.md_dict (right after the object header)
  int64_t method_self = -1;        // PyMethodObject.im_self (2.7 finds its main thread through one)
  int64_t type_name = -1;          // tp_name (char*)
  int64_t type_basicsize = -1;     // tp_basicsize
  int64_t type_dictoffset = -1;    // tp_dictoffset
  int64_t type_flags = -1;         // tp_flags
  int64_t heaptype_cached_keys = -1;  // PyHeapTypeObject.ht_cached_keys (3.3+)
  int64_t bytes_size = -1;         // PyVarObject.ob_size of bytes / str(2.7)
  int64_t bytes_data = -1;         // ob_sval
  int64_t tuple_size = -1;
  int64_t tuple_items = -1;

  // PyUnicodeObject (3.3+)
  int64_t unicode_state = -1;        // PyASCIIObject.state (bitfield word)
  int64_t unicode_length = -1;
  int64_t unicode_ascii_size = -1;   // sizeof(PyASCIIObject): ascii data follows
  int64_t unicode_compact_size = -1; // sizeof(PyCompactUnicodeObject): non-ascii compact data follows

  // Dicts (for thread names: threading.Thread._name)
  int64_t dict_keys = -1;            // PyDictObject.ma_keys
  int64_t dict_values = -1;          // PyDictObject.ma_values
  int64_t dict_mask = -1;            // 2.7: ma_mask
  int64_t dict_table = -1;           // 2.7: ma_table (PyDictEntry {hash,key,value})
  int64_t dictkeys_size = -1;        // 3.6-3.10: dk_size; 3.11+: dk_log2_size (uint8)
  int64_t dictkeys_log2_index_bytes = -1;  // 3.11+: dk_log2_index_bytes (uint8)
  int64_t dictkeys_kind = -1;        // 3.11+: dk_kind (uint8; 0 general, 1 unicode, 2 split)
  int64_t dictkeys_nentries = -1;    // dk_nentries
  int64_t dictkeys_indices = -1;     // dk_indices (entries follow the index array)
  int64_t dictvalues_values = -1;    // 3.11+: offsetof(PyDictValues, values)
  int64_t managed_dict_offset = -1;  // 3.11+: MANAGED_DICT_OFFSET (negative, from object start)
};

// Returns the compiled-in table entry for major.minor, or nullptr.
const PyOffsets* find_table_offsets(int major, int minor);

}  // namespace periscope
