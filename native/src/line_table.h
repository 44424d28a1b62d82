// Maps a bytecode offset to a source line, for each line-table format
// CPython has used: co_lnotab (<=3.9), the PEP 626 table (3.10), and the
// location table (3.11+).
#pragma once
#include <cstdint>
#include <string>

namespace periscope {

enum LineTableFormat : int { kLnotab27 = 0, kLnotab36 = 1, kLinetable310 = 2, kLocations311 = 3 };

// byte_offset: offset in bytes of the instruction being executed. Returns
// the line, or first_line when the offset is before the first instruction,
// or -1 when the table marks the instruction as having no line.
int line_for_offset(LineTableFormat format, const std::string& table, int first_line, int64_t byte_offset);

}  // namespace periscope
