// Everything version-specific the reader knows about one target, computed
// once at attach: struct offsets (PyOffsets, from the generated table or the
// target's own _Py_DebugOffsets), the few offsets only _Py_DebugOffsets
// publishes, and the behaviour that differs between versions and builds
// (Features). The walker, the code cache, the string and thread-name readers
// consult this record and never compare version numbers themselves.
#pragma once
#include <cstdint>
#include <string>

#include "line_table.h"
#include "offsets.h"

namespace periscope {

// How a thread's frames are reached and linked.
enum class FrameModel : uint8_t {
  kFrameObjects,  // <=3.10: tstate->frame, PyFrameObject.f_back
  kCFrame,        // 3.11-3.12: tstate->cframe->current_frame, _PyInterpreterFrame
  kCurrentFrame,  // 3.13+: tstate->current_frame
};

// How the interpreter list is found and where the struct offsets come from.
enum class Locate : uint8_t {
  kInterpHead,    // 2.7, 3.6: the interp_head global; offsets from the generated table
  kRuntime,       // 3.7-3.12: _PyRuntime.interpreters.head; offsets from the generated table
  kDebugOffsets,  // 3.13+: _PyRuntime starts with the interpreter's own _Py_DebugOffsets
};

// Where "which thread holds the GIL" is published.
enum class GilSource : uint8_t {
  kThreadStateGlobal,   // 2.7, 3.6: the global _PyThreadState_Current (a symbol)
  kRuntimeGilstate,     // 3.7-3.11: _PyRuntime.gilstate.tstate_current
  kInterpreterGil,      // 3.12+: interp->ceval.gil -> {locked, last_holder}
  kThreadFlag,          // 3.15+: PyThreadState.holds_gil, per thread
};

// Where a threading.Thread keeps its instance attributes.
enum class InstanceDict : uint8_t {
  kDict27,          // 2.7: PyDictObject with an open-addressing table
  kDictKeys36,      // 3.6-3.10: tp_dictoffset -> dict with PyDictKeysObject
  kManaged311,      // 3.11: managed dict, values pointer one word before it
  kDictOrValues312, // 3.12: one managed word: dict, or values tagged with 1
  kInlineValues313, // 3.13+: values inline after tp_basicsize, else a managed dict
};

// One row per minor version: what differs in behaviour. A new CPython
// version is a new row here (plus, before 3.13, a generated offsets entry).
struct VersionTraits {
  int major, minor;
  Locate locate;
  FrameModel frames;
  LineTableFormat line_table;
  int lasti_unit;             // bytes per f_lasti unit (<=3.10 frame objects)
  GilSource gil;
  InstanceDict instance_dict;
  int owner_cstack;           // frame owner of C-stack shim frames; -1: none
  int owner_interpreter;      // frame owner of the interpreter's entry frames; -1: none
  bool tagged_stackrefs;      // f_executable is a _PyStackRef with tag bits
  bool base_frame_sentinel;   // each thread's chain ends at tstate->base_frame
  bool ft_interned_byte;      // free-threaded PyASCIIObject.state.interned is a whole byte
  // PyGenObject.gi_frame_state values (enum _framestate): a suspended
  // generator awaiting another (yield from / await) is in
  // [yield_from_lo, yield_from_hi]; one at or above `finished` has no frame.
  int8_t gen_yield_from_lo = 0, gen_yield_from_hi = -1, gen_finished = 127;
  // Such a generator's frame keeps the awaited object this many words below
  // its saved stackpointer (3.14: on top; 3.15: under the value sent).
  int8_t gen_awaited_below_top = 0;
};

// The row for major.minor; for a version newer than every row, the newest
// row (its debug offsets must then validate); nullptr for older ones.
const VersionTraits* traits_for(int major, int minor);

// Offsets only a target's _Py_DebugOffsets provides (3.13+); -1 = absent.
struct DebugOnlyOffsets {
  int64_t tstate_holds_gil = -1;    // 3.15+: int PyThreadState.holds_gil
  int64_t tstate_base_frame = -1;   // 3.15+: _PyInterpreterFrame *base_frame
  int64_t gil_enabled = -1;         // free-threaded: int _gil_runtime_state.enabled
  int64_t iframe_tlbc_index = -1;   // free-threaded 3.14+: int32 frame->tlbc_index
  int64_t code_tlbc = -1;           // free-threaded 3.14+: _PyCodeArray *co_tlbc
  // 3.14+, for asyncio task stacks (asyncio_tasks.cc); all -1 when any of
  // them failed its check (asyncio_error says which), the rest still usable.
  int64_t gen_iframe = -1;          // PyGenObject.gi_iframe (the embedded frame)
  int64_t gen_frame_state = -1;     // int8 PyGenObject.gi_frame_state
  int64_t iframe_stackpointer = -1; // _PyStackRef *frame->stackpointer
  int64_t set_used = -1, set_table = -1, set_mask = -1;  // PySetObject
  int64_t llist_next = -1;          // struct llist_node.next
  int64_t long_tag = -1, long_digits = -1;  // PyLongObject lv_tag, ob_digit (uint32 digits of 30 bits)
};

struct Features {
  VersionTraits traits{};
  bool free_threaded = false;
  bool per_thread_bytecode = false;  // instr_ptr points into co_tlbc[tlbc_index]
  uint64_t executable_mask = ~0ULL;  // clears _PyStackRef tag bits
  int unicode_kind_shift = 2;        // bit position of PyASCIIObject.state.kind
  bool bytes_strings = false;        // 2.7: names are PyStringObject (bytes)
};

struct Layout : PyOffsets {
  DebugOnlyOffsets dbg;
  std::string asyncio_error;  // why the asyncio-only offsets above are unusable ("" if they are)
  Features features;
};

// Derives the features of major.minor (and build) once the offsets are known.
Features features_for(const VersionTraits& t, bool free_threaded, const DebugOnlyOffsets& dbg);

}  // namespace periscope
