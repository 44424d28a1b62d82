// Reads threading.Thread's name attribute out of a Thread object in the
// target: through the instance __dict__, or the 3.11+ managed dict / inline
// values that replaced it.
#pragma once
#include <cstdint>
#include <string>

#include "layout.h"
#include "remote_memory.h"

namespace periscope {

bool read_thread_object_name(SnapshotCache& mem, const Layout& o, uint64_t thread_obj, std::string* out);

// threading.main_thread().name, found through sys.modules; false where it
// cannot be read (threading not imported, torn memory).
bool read_main_thread_name(SnapshotCache& mem, const Layout& o, uint64_t interp, std::string* out);

}  // namespace periscope
