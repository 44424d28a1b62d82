// CPython 3.13+ publishes its own struct offsets (_Py_DebugOffsets) at the
// start of _PyRuntime, so patch releases that move fields, and new versions
// that keep the table's shape, are readable without a new agent.
#pragma once
#include <cstdint>
#include <string>

#include "layout.h"
#include "remote_memory.h"

namespace periscope {

// Fills `out` from the _Py_DebugOffsets at `runtime` of a 3.13+ target whose
// version word claims 3.`minor`. The table is untrusted input: its cookie and
// version are checked, and every offset used must lie inside the struct it
// describes (by the size the target reports for that struct) and be aligned.
// Fields the table does not carry (dict internals for thread names) come from
// `fallback`, the generated table of the same or the newest known version,
// adjusted for a free-threaded object header. Returns false with the reason
// in `why` (a sentence naming what did not hold).
bool read_debug_offsets(const RemoteMemory& mem, uint64_t runtime, int minor, const PyOffsets* fallback,
                        Layout* out, std::string* why);

inline constexpr char kDebugCookie[8] = {'x', 'd', 'e', 'b', 'u', 'g', 'p', 'y'};

// Newest minor version whose table layout this reader knows; a pre-release
// of a newer one is refused by name (its layout may still change).
inline constexpr int kNewestKnownDebugLayout = 15;

}  // namespace periscope
