#include "line_table.h"

namespace periscope {

namespace {

int lnotab_line(const std::string& t, int first_line, int64_t offset, bool signed_deltas) {
  int line = first_line;
  int64_t addr = 0;
  for (size_t i = 0; i + 1 < t.size(); i += 2) {
    addr += static_cast<uint8_t>(t[i]);
    if (addr > offset) break;
    line += signed_deltas ? static_cast<int8_t>(t[i + 1]) : static_cast<uint8_t>(t[i + 1]);
  }
  return line;
}

// 3.10: (start delta, line delta) byte pairs; a line delta of -128 means
// "no line" for that range.
int linetable310_line(const std::string& t, int first_line, int64_t offset) {
  int computed = first_line, line = -1;
  int64_t end = 0;
  for (size_t i = 0; i + 1 < t.size(); i += 2) {
    int64_t start = end;
    end += static_cast<uint8_t>(t[i]);
    int8_t ldelta = static_cast<int8_t>(t[i + 1]);
    if (ldelta == -128) line = -1;
    else { computed += ldelta; line = computed; }
    if (offset >= start && offset < end) return line;
  }
  return -1;
}

struct Cursor {
  const std::string& t;
  size_t pos;
  bool more() const { return pos < t.size(); }
  uint8_t byte() { return more() ? static_cast<uint8_t>(t[pos++]) : 0; }
  uint32_t varint() {
    uint32_t b = byte(), val = b & 63;
    int shift = 0;
    while ((b & 64) && more() && shift < 28) {
      b = byte();
      shift += 6;
      val |= (b & 63) << shift;
    }
    return val;
  }
  int32_t svarint() {
    uint32_t v = varint();
    return (v & 1) ? -static_cast<int32_t>(v >> 1) : static_cast<int32_t>(v >> 1);
  }
};

// 3.11+: entries start with a byte 1CCCCLLL (code, length-1 in code units).
int locations_line(const std::string& t, int first_line, int64_t offset) {
  Cursor c{t, 0};
  int line = first_line;
  int64_t addr = 0;
  while (c.more()) {
    uint8_t first = c.byte();
    if (!(first & 0x80)) return -1;  // out of sync: garbage table
    int code = (first >> 3) & 15;
    int64_t end = addr + ((first & 7) + 1) * 2;
    int result;
    if (code == 15) {
      result = -1;
    } else if (code == 14) {
      line += c.svarint();
      c.varint(); c.varint(); c.varint();  // end line, start col, end col
      result = line;
    } else if (code == 13) {
      line += c.svarint();
      result = line;
    } else if (code >= 10) {
      line += code - 10;
      c.byte(); c.byte();
      result = line;
    } else {
      c.byte();
      result = line;
    }
    if (offset >= addr && offset < end) return result;
    addr = end;
  }
  return -1;
}

}  // namespace

int line_for_offset(LineTableFormat format, const std::string& table, int first_line, int64_t byte_offset) {
  if (byte_offset < 0) return first_line;
  switch (format) {
    case kLnotab27: return lnotab_line(table, first_line, byte_offset, false);
    case kLnotab36: return lnotab_line(table, first_line, byte_offset, true);
    case kLinetable310: return linetable310_line(table, first_line, byte_offset);
    case kLocations311: return locations_line(table, first_line, byte_offset);
  }
  return -1;
}

}  // namespace periscope
