// Just enough ELF64 to find CPython's globals in an executable or libpython:
// symbols from .dynsym and .symtab, section ranges, and the load address.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace periscope {

struct ElfSection {
  std::string name;
  uint64_t addr = 0, size = 0, file_offset = 0;
  uint32_t type = 0;
};

class ElfFile {
 public:
  // Throws ReaderError(NOT_PYTHON) when the file is not a readable ELF64.
  static ElfFile open(const std::string& path);

  std::optional<uint64_t> symbol(const std::string& name) const;  // link-time address
  const ElfSection* section(const std::string& name) const;
  // Lowest PT_LOAD virtual address, for computing the load bias.
  uint64_t first_load_vaddr() const { return first_load_vaddr_; }
  bool is_shared_object() const { return is_dyn_; }
  // Contents of a PROGBITS section (empty for NOBITS or on failure).
  std::string section_bytes(const ElfSection& s, size_t max_bytes) const;
  bool has_symtab() const { return has_symtab_; }
  // e_machine (EM_X86_64, EM_AARCH64, ...): whose struct layouts apply.
  uint16_t machine() const { return machine_; }

 private:
  std::string path_;
  std::vector<ElfSection> sections_;
  struct Sym { std::string name; uint64_t value; };
  std::vector<Sym> symbols_;
  uint64_t first_load_vaddr_ = 0;
  bool is_dyn_ = false;
  bool has_symtab_ = false;
  uint16_t machine_ = 0;
};

}  // namespace periscope
