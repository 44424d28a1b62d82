// Reads threading.Thread's name attribute out of a Thread object in the
// target: through the instance __dict__, or the 3.11+ managed dict / inline
// values that replaced it.
#pragma once
#include <cstdint>
#include <string>

#include "offsets.h"
#include "remote_memory.h"

namespace periscope {

bool read_thread_object_name(SnapshotCache& mem, const PyOffsets& o, uint64_t thread_obj, std::string* out);

}  // namespace periscope
