// The generated offsets table (generated/offsets_table.h) was probed with
// x86-64 headers. Compiled for aarch64, the same headers give the same
// offsets for every field and version but one: aarch64's glibc has a 48-byte
// pthread_mutex_t where x86-64's is 40, and 3.7-3.11's _PyRuntimeState holds
// two mutexes before gilstate.tstate_current, so that field sits 16 bytes
// further. Measured by compiling native/tools/probe.c with Debian's
// aarch64-linux-gnu-gcc against each version's headers (3.11 also against
// Debian's arm64 libpython3.11-dev) and running it under qemu;
// test/build/arm64-offsets.test.ts measures it again and fails on any other
// difference. 3.13+ read their layout from the interpreter itself.
#pragma once
#include <cstdint>

#include "offsets.h"

namespace periscope {

// Adjusts a table entry copied for a target whose interpreter binary has
// ELF e_machine `machine`; a no-op for x86-64 (the table's own machine).
void apply_arch_offsets(uint16_t machine, PyOffsets* o);

}  // namespace periscope
