// CPython 3.13+ publishes its own struct offsets (_Py_DebugOffsets) at the
// start of _PyRuntime, so new versions are readable without a new table.
#pragma once
#include <cstdint>

#include "offsets.h"
#include "remote_memory.h"

namespace periscope {

// Fills `out` from the _Py_DebugOffsets at `runtime`; false if the cookie is
// missing or the layout is not one we know. Fields the debug offsets do not
// carry (dict internals) are taken from `fallback` when given.
bool read_debug_offsets(const RemoteMemory& mem, uint64_t runtime, int minor, const PyOffsets* fallback,
                        PyOffsets* out);

inline constexpr char kDebugCookie[8] = {'x', 'd', 'e', 'b', 'u', 'g', 'p', 'y'};

}  // namespace periscope
