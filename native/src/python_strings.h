// Decoding CPython str/bytes objects read from another process into UTF-8.
#pragma once
#include <cstdint>
#include <string>

#include "layout.h"
#include "remote_memory.h"

namespace periscope {

// Longest string we copy out of a target: names and paths are short, and a
// garbage length must not make us allocate gigabytes.
inline constexpr size_t kMaxStringBytes = 4096;

// str on 3.x (PEP 393 compact forms), str (bytes) on 2.7. False if unreadable.
bool read_py_string(SnapshotCache& mem, const Layout& o, uint64_t obj, std::string* out);
// The tp_name of obj's type (a C string), up to 64 bytes. False if unreadable.
bool read_type_name(SnapshotCache& mem, const Layout& o, uint64_t obj, std::string* out);
// The same for a type object itself.
bool read_type_object_name(SnapshotCache& mem, const Layout& o, uint64_t type, std::string* out);
// bytes (or 2.7 str) contents, up to max bytes.
bool read_py_bytes(SnapshotCache& mem, const Layout& o, uint64_t obj, size_t max, std::string* out);

}  // namespace periscope
