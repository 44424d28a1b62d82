/*
 * Offsets probe: prints every periscope::PyOffsets field (native/src/offsets.h)
 * for the CPython version whose headers it is compiled against.
 *
 * Built and run by native/tools/gen-offsets.ts, roughly:
 *   cc -std=gnu11 -DPy_BUILD_CORE=1 -DPy_BUILD_CORE_BUILTIN=1 \
 *      -I<prefix>/include/pythonX.Y native/tools/probe.c -o probe && ./probe
 *
 * Output is line oriented:
 *   "meta <key> <value>"   facts about the build (version, pointer size, ...)
 *   "<field> <integer>"    one line per PyOffsets field, -1 when this version
 *                          has no such field.
 * The generator checks that the set of fields printed here is exactly the set
 * declared in offsets.h, so adding a field there without adding it here fails.
 *
 * Only headers are used; nothing is linked against libpython.
 */
#include <Python.h>
#include <stddef.h>
#include <stdio.h>

#if PY_MAJOR_VERSION == 2
#  if PY_MINOR_VERSION != 7
#    error "only 2.7 is supported among 2.x"
#  endif
#elif PY_VERSION_HEX < 0x03060000
#  error "only 3.6+ is supported among 3.x"
#endif

/* ---- internal headers --------------------------------------------------- */
#if PY_VERSION_HEX < 0x030B0000
#  include <frameobject.h> /* PyFrameObject is public up to 3.10 */
#endif
#if PY_MAJOR_VERSION == 2 || PY_VERSION_HEX < 0x03070000
/* 2.7 / 3.6: PyInterpreterState, PyThreadState, PyCodeObject are public
   (pystate.h / code.h); there is no _PyRuntime. */
#  include <code.h>
#elif PY_VERSION_HEX < 0x03080000
/* 3.7: _PyRuntimeState lives in include/python3.7m/internal/pystate.h;
   PyInterpreterState is still in the public pystate.h. */
#  include <code.h>
#  include <internal/pystate.h>
#elif PY_VERSION_HEX < 0x03090000
/* 3.8: _PyRuntimeState and PyInterpreterState in internal/pycore_pystate.h. */
#  include <code.h>
#  include <internal/pycore_pystate.h>
#elif PY_VERSION_HEX < 0x030B0000
/* 3.9-3.10: internal/pycore_interp.h + internal/pycore_runtime.h. */
#  include <internal/pycore_interp.h>
#  include <internal/pycore_runtime.h>
#else
/* 3.11+: interpreter frames, dict internals, object pre-header. */
#  include <internal/pycore_interp.h>
#  include <internal/pycore_runtime.h>
#  include <internal/pycore_frame.h>
#  include <internal/pycore_dict.h>
#  include <internal/pycore_object.h>
#  if PY_VERSION_HEX >= 0x030C0000
#    include <internal/pycore_gil.h>
#  endif
#endif

/* ---- PyDictKeysObject for 3.6-3.10 --------------------------------------
 * In 3.6-3.10 struct _dictkeysobject is defined in Objects/dict-common.h,
 * which is not installed with the headers. Its layout (fact, per version):
 *   Py_ssize_t dk_refcnt; Py_ssize_t dk_size; dict_lookup_func dk_lookup;
 *   Py_ssize_t dk_usable; Py_ssize_t dk_nentries; <indices>
 * where <indices> is `char dk_indices[]` in 3.7-3.10 and, in 3.6, a union
 * { int8_t as_1[8]; int16_t as_2[4]; int32_t as_4[2]; int64_t as_8[1]; }
 * starting at the same offset. The entries array follows the indices. */
#if PY_MAJOR_VERSION == 3 && PY_VERSION_HEX < 0x030B0000
struct probe_dictkeys_36_310 {
  Py_ssize_t dk_refcnt;
  Py_ssize_t dk_size;
  void *dk_lookup;
  Py_ssize_t dk_usable;
  Py_ssize_t dk_nentries;
  char dk_indices[];
};
#endif

#define OFF(type, member) ((long long)offsetof(type, member))
#define P(name, value) printf("%s %lld\n", #name, (long long)(value))
#define NONE(name) printf("%s -1\n", #name)

int main(void) {
  /* ---- build facts ---- */
  printf("meta version %s\n", PY_VERSION);
  printf("meta version_hex 0x%08lx\n", (unsigned long)PY_VERSION_HEX);
  printf("meta major %d\n", PY_MAJOR_VERSION);
  printf("meta minor %d\n", PY_MINOR_VERSION);
  printf("meta sizeof_pointer %d\n", (int)sizeof(void *));
#ifdef Py_DEBUG
  printf("meta py_debug 1\n");
#else
  printf("meta py_debug 0\n");
#endif
#ifdef Py_TRACE_REFS
  printf("meta py_trace_refs 1\n");
#else
  printf("meta py_trace_refs 0\n");
#endif
#ifdef Py_GIL_DISABLED
  printf("meta py_gil_disabled 1\n");
#else
  printf("meta py_gil_disabled 0\n");
#endif

  /* ---- _PyRuntimeState (3.7+) ---- */
#if PY_VERSION_HEX >= 0x03070000 && PY_MAJOR_VERSION == 3
  P(runtime_interpreters_head, OFF(_PyRuntimeState, interpreters.head));
#else
  NONE(runtime_interpreters_head);
#endif
#if PY_VERSION_HEX >= 0x03070000 && PY_VERSION_HEX < 0x030C0000 && PY_MAJOR_VERSION == 3
  P(runtime_gilstate_tstate_current, OFF(_PyRuntimeState, gilstate.tstate_current));
#else
  /* 2.7/3.6: the current tstate is the global _PyThreadState_Current;
     3.12+: a thread-local (_Py_tss_tstate), not reachable by offset. */
  NONE(runtime_gilstate_tstate_current);
#endif

  /* ---- PyInterpreterState ---- */
  P(interp_next, OFF(PyInterpreterState, next));
#if PY_VERSION_HEX >= 0x030B0000 && PY_MAJOR_VERSION == 3
  /* The thread list moved into `struct pythreads threads` in 3.11 already
     (not 3.12): interp->threads.head. */
  P(interp_tstate_head, OFF(PyInterpreterState, threads.head));
#else
  P(interp_tstate_head, OFF(PyInterpreterState, tstate_head));
#endif
#if PY_VERSION_HEX >= 0x030C0000 && PY_MAJOR_VERSION == 3
  /* sys.modules: where threading.main_thread() is found by name. */
  P(interp_modules, OFF(PyInterpreterState, imports.modules));
#else
  P(interp_modules, OFF(PyInterpreterState, modules));
#endif
#if PY_VERSION_HEX >= 0x030C0000 && PY_MAJOR_VERSION == 3
  /* 3.12+: per-interpreter GIL, interp->ceval.gil points at it. */
  P(interp_gil, OFF(PyInterpreterState, ceval.gil));
  P(gil_last_holder, OFF(struct _gil_runtime_state, last_holder));
  P(gil_locked, OFF(struct _gil_runtime_state, locked));
#else
  NONE(interp_gil);
  NONE(gil_last_holder);
  NONE(gil_locked);
#endif

  /* ---- PyThreadState ---- */
  P(tstate_next, OFF(PyThreadState, next));
  P(tstate_interp, OFF(PyThreadState, interp));
#if PY_VERSION_HEX < 0x030B0000
  P(tstate_frame, OFF(PyThreadState, frame));
  NONE(tstate_cframe);
  NONE(cframe_current_frame);
  NONE(tstate_current_frame);
#elif PY_VERSION_HEX < 0x030D0000
  NONE(tstate_frame);
  P(tstate_cframe, OFF(PyThreadState, cframe));
  P(cframe_current_frame, OFF(_PyCFrame, current_frame));
  NONE(tstate_current_frame);
#else
  NONE(tstate_frame);
  NONE(tstate_cframe);
  NONE(cframe_current_frame);
  P(tstate_current_frame, OFF(PyThreadState, current_frame));
#endif
  P(tstate_thread_id, OFF(PyThreadState, thread_id));
#if PY_VERSION_HEX >= 0x030B0000
  P(tstate_native_thread_id, OFF(PyThreadState, native_thread_id));
#else
  NONE(tstate_native_thread_id);
#endif

  /* ---- PyFrameObject (<=3.10) ---- */
#if PY_VERSION_HEX < 0x030B0000
  P(frame_back, OFF(PyFrameObject, f_back));
  P(frame_code, OFF(PyFrameObject, f_code));
  P(frame_lasti, OFF(PyFrameObject, f_lasti));
  P(frame_lineno, OFF(PyFrameObject, f_lineno));
  P(frame_localsplus, OFF(PyFrameObject, f_localsplus));
#else
  NONE(frame_back);
  NONE(frame_code);
  NONE(frame_lasti);
  NONE(frame_lineno);
  NONE(frame_localsplus);
#endif

  /* ---- _PyInterpreterFrame (3.11+) ---- */
#if PY_VERSION_HEX >= 0x030B0000
  P(iframe_previous, OFF(_PyInterpreterFrame, previous));
#  if PY_VERSION_HEX >= 0x030D0000
  P(iframe_code, OFF(_PyInterpreterFrame, f_executable));
  P(iframe_instr, OFF(_PyInterpreterFrame, instr_ptr));
#  else
  P(iframe_code, OFF(_PyInterpreterFrame, f_code));
  P(iframe_instr, OFF(_PyInterpreterFrame, prev_instr));
#  endif
  P(iframe_owner, OFF(_PyInterpreterFrame, owner));
  P(iframe_localsplus, OFF(_PyInterpreterFrame, localsplus));
#else
  NONE(iframe_previous);
  NONE(iframe_code);
  NONE(iframe_instr);
  NONE(iframe_owner);
  NONE(iframe_localsplus);
#endif

  /* ---- PyCodeObject ---- */
  P(code_name, OFF(PyCodeObject, co_name));
#if PY_VERSION_HEX >= 0x030B0000
  P(code_qualname, OFF(PyCodeObject, co_qualname));
#else
  NONE(code_qualname);
#endif
  P(code_filename, OFF(PyCodeObject, co_filename));
  P(code_firstlineno, OFF(PyCodeObject, co_firstlineno));
#if PY_VERSION_HEX < 0x030A0000
  P(code_lnotab, OFF(PyCodeObject, co_lnotab));
  NONE(code_linetable);
#else
  NONE(code_lnotab);
  P(code_linetable, OFF(PyCodeObject, co_linetable));
#endif
#if PY_VERSION_HEX < 0x030B0000
  P(code_code, OFF(PyCodeObject, co_code));
  NONE(code_code_adaptive);
  P(code_argcount, OFF(PyCodeObject, co_argcount));
  P(code_varnames, OFF(PyCodeObject, co_varnames));
  NONE(code_localsplusnames);
#else
  NONE(code_code);
  P(code_code_adaptive, OFF(PyCodeObject, co_code_adaptive));
  P(code_argcount, OFF(PyCodeObject, co_argcount));
  NONE(code_varnames);
  P(code_localsplusnames, OFF(PyCodeObject, co_localsplusnames));
#endif

  /* ---- Objects ---- */
  P(object_type, OFF(PyObject, ob_type));
  /* PyModuleObject is PyObject_HEAD then md_dict on every version, but is
     private to moduleobject.c before 3.10: its dict follows the header. */
  P(module_dict, sizeof(PyObject));
  P(method_self, OFF(PyMethodObject, im_self));
  P(type_name, OFF(PyTypeObject, tp_name));
  P(type_basicsize, OFF(PyTypeObject, tp_basicsize));
  P(type_dictoffset, OFF(PyTypeObject, tp_dictoffset));
  P(type_flags, OFF(PyTypeObject, tp_flags));
#if PY_MAJOR_VERSION == 2
  NONE(heaptype_cached_keys);
  /* 2.7 str is the bytes type; PyObject_VAR_HEAD is expanded inline. */
  P(bytes_size, OFF(PyStringObject, ob_size));
  P(bytes_data, OFF(PyStringObject, ob_sval));
  P(tuple_size, OFF(PyTupleObject, ob_size));
#else
  P(heaptype_cached_keys, OFF(PyHeapTypeObject, ht_cached_keys));
  P(bytes_size, OFF(PyBytesObject, ob_base.ob_size));
  P(bytes_data, OFF(PyBytesObject, ob_sval));
  P(tuple_size, OFF(PyTupleObject, ob_base.ob_size));
#endif
  P(tuple_items, OFF(PyTupleObject, ob_item));

  /* ---- PyUnicodeObject (3.3+) ---- */
#if PY_MAJOR_VERSION == 3
  P(unicode_state, OFF(PyASCIIObject, state));
  P(unicode_length, OFF(PyASCIIObject, length));
  P(unicode_ascii_size, sizeof(PyASCIIObject));
  P(unicode_compact_size, sizeof(PyCompactUnicodeObject));
#else
  NONE(unicode_state);
  NONE(unicode_length);
  NONE(unicode_ascii_size);
  NONE(unicode_compact_size);
#endif

  /* ---- Dicts ---- */
#if PY_MAJOR_VERSION == 2
  NONE(dict_keys);
  NONE(dict_values);
  P(dict_mask, OFF(PyDictObject, ma_mask));
  P(dict_table, OFF(PyDictObject, ma_table));
  NONE(dictkeys_size);
  NONE(dictkeys_log2_index_bytes);
  NONE(dictkeys_kind);
  NONE(dictkeys_nentries);
  NONE(dictkeys_indices);
  NONE(dictvalues_values);
  NONE(managed_dict_offset);
#else
  P(dict_keys, OFF(PyDictObject, ma_keys));
  P(dict_values, OFF(PyDictObject, ma_values));
  NONE(dict_mask);
  NONE(dict_table);
#  if PY_VERSION_HEX < 0x030B0000
  P(dictkeys_size, OFF(struct probe_dictkeys_36_310, dk_size));
  NONE(dictkeys_log2_index_bytes);
  NONE(dictkeys_kind);
  P(dictkeys_nentries, OFF(struct probe_dictkeys_36_310, dk_nentries));
  P(dictkeys_indices, OFF(struct probe_dictkeys_36_310, dk_indices));
  NONE(dictvalues_values); /* ma_values points straight at the value array */
  NONE(managed_dict_offset);
#  else
  P(dictkeys_size, OFF(PyDictKeysObject, dk_log2_size));
  P(dictkeys_log2_index_bytes, OFF(PyDictKeysObject, dk_log2_index_bytes));
  P(dictkeys_kind, OFF(PyDictKeysObject, dk_kind));
  P(dictkeys_nentries, OFF(PyDictKeysObject, dk_nentries));
  P(dictkeys_indices, OFF(PyDictKeysObject, dk_indices));
  P(dictvalues_values, OFF(PyDictValues, values));
#    if defined(MANAGED_DICT_OFFSET)
  /* 3.11: slot -3 holds the dict pointer (the values pointer is at -4);
     3.13: slot -3 is a PyManagedDictPointer (values are inline). */
  P(managed_dict_offset, MANAGED_DICT_OFFSET);
#    elif PY_VERSION_HEX >= 0x030C0000 && PY_VERSION_HEX < 0x030D0000
  /* 3.12 has no MANAGED_DICT_OFFSET macro; _PyObject_DictOrValuesPointer()
     returns ((PyDictOrValues *)obj) - 3, a tagged union: low bit set means
     "values pointer - 1", clear means a PyDictObject pointer. */
  P(managed_dict_offset, -3 * (long long)sizeof(PyDictOrValues));
#    else
  NONE(managed_dict_offset);
#    endif
#  endif
#endif
  return 0;
}
