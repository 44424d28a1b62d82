#include "python_strings.h"

#include <vector>

namespace periscope {

namespace {
void append_utf8(std::string& out, uint32_t cp) {
  if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) cp = 0xFFFD;  // lone surrogates stay printable
  if (cp < 0x80) out.push_back(static_cast<char>(cp));
  else if (cp < 0x800) { out.push_back(0xC0 | (cp >> 6)); out.push_back(0x80 | (cp & 0x3F)); }
  else if (cp < 0x10000) { out.push_back(0xE0 | (cp >> 12)); out.push_back(0x80 | ((cp >> 6) & 0x3F)); out.push_back(0x80 | (cp & 0x3F)); }
  else { out.push_back(0xF0 | (cp >> 18)); out.push_back(0x80 | ((cp >> 12) & 0x3F)); out.push_back(0x80 | ((cp >> 6) & 0x3F)); out.push_back(0x80 | (cp & 0x3F)); }
}
}  // namespace

bool read_py_bytes(SnapshotCache& mem, const Layout& o, uint64_t obj, size_t max, std::string* out) {
  if (!obj || o.bytes_size < 0 || o.bytes_data < 0) return false;
  int64_t size = 0;
  if (!mem.read_value(obj + o.bytes_size, &size) || size < 0) return false;
  size_t n = std::min<uint64_t>(static_cast<uint64_t>(size), max);
  out->resize(n);
  return mem.read(obj + o.bytes_data, out->data(), n);
}

bool read_type_name(SnapshotCache& mem, const Layout& o, uint64_t obj, std::string* out) {
  bool ok = false;
  uint64_t type = obj ? mem.read_ptr(obj + o.object_type, &ok) : 0;
  return ok && read_type_object_name(mem, o, type, out);
}

bool read_type_object_name(SnapshotCache& mem, const Layout& o, uint64_t type, std::string* out) {
  bool ok = false;
  uint64_t name = type ? mem.read_ptr(type + o.type_name, &ok) : 0;
  char buf[64];
  if (!ok || !name) return false;
  // tp_name may sit near the end of a mapping: read up to the first failure.
  size_t n = 0;
  while (n < sizeof buf && mem.read(name + n, buf + n, 1) && buf[n]) ++n;
  if (n == sizeof buf || n == 0) return false;
  out->assign(buf, n);
  return true;
}

bool read_py_string(SnapshotCache& mem, const Layout& o, uint64_t obj, std::string* out) {
  out->clear();
  if (!obj) return false;
  if (o.features.bytes_strings) return read_py_bytes(mem, o, obj, kMaxStringBytes, out);
  int64_t length = 0;
  uint32_t state = 0;
  if (!mem.read_value(obj + o.unicode_length, &length) || !mem.read_value(obj + o.unicode_state, &state)) return false;
  if (length < 0 || length > static_cast<int64_t>(kMaxStringBytes)) return false;
  // PyASCIIObject.state: interned (2 bits, or a byte in free-threaded 3.14+),
  // then kind:3, compact:1, ascii:1.
  const int shift = o.features.unicode_kind_shift;
  uint32_t kind = (state >> shift) & 7, compact = (state >> (shift + 3)) & 1, ascii = (state >> (shift + 4)) & 1;
  if (kind != 1 && kind != 2 && kind != 4) return false;
  uint64_t data;
  if (compact && ascii) data = obj + o.unicode_ascii_size;
  else if (compact) data = obj + o.unicode_compact_size;
  else {
    bool ok = false;
    data = mem.read_ptr(obj + o.unicode_compact_size, &ok);  // PyUnicodeObject.data.any
    if (!ok || !data) return false;
  }
  std::vector<uint8_t> raw(static_cast<size_t>(length) * kind);
  if (!mem.read(data, raw.data(), raw.size())) return false;
  out->reserve(raw.size());
  for (int64_t i = 0; i < length; ++i) {
    uint32_t cp;
    if (kind == 1) cp = raw[i];
    else if (kind == 2) cp = raw[i * 2] | (raw[i * 2 + 1] << 8);
    else cp = raw[i * 4] | (raw[i * 4 + 1] << 8) | (raw[i * 4 + 2] << 16) | (static_cast<uint32_t>(raw[i * 4 + 3]) << 24);
    if (ascii && cp >= 0x80) return false;  // torn read
    append_utf8(*out, cp);
  }
  return true;
}

}  // namespace periscope
