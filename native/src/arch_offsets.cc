#include "arch_offsets.h"

#include <elf.h>

namespace periscope {

namespace {
struct Aarch64Fix {
  int major, minor;
  int64_t runtime_gilstate_tstate_current;
};
// offsetof(_PyRuntimeState, gilstate.tstate_current) on aarch64.
constexpr Aarch64Fix kAarch64[] = {
    {3, 7, 1496}, {3, 8, 1384}, {3, 9, 584}, {3, 10, 584}, {3, 11, 592},
};
}  // namespace

void apply_arch_offsets(uint16_t machine, PyOffsets* o) {
  if (machine != EM_AARCH64) return;
  for (const Aarch64Fix& f : kAarch64)
    if (f.major == o->major && f.minor == o->minor) o->runtime_gilstate_tstate_current = f.runtime_gilstate_tstate_current;
}

}  // namespace periscope
