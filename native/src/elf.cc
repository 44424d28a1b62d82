#include "elf.h"

#include <elf.h>
#include <algorithm>
#include <cstring>
#include <fstream>

#include "errors.h"

namespace periscope {

namespace {
// Only the symbols the reader may ask for are kept, so a 30 MB libpython
// does not cost us a map of every symbol it has.
bool interesting(const std::string& n) {
  static const char* kNames[] = {"_PyRuntime", "interp_head", "Py_Version", "_PyThreadState_Current",
                                 "PyCode_Type", "_Py_Version", "PyUnicode_Type", "PyString_Type"};
  for (const char* k : kNames) if (n == k) return true;
  return false;
}

bool read_at(std::ifstream& in, uint64_t off, void* out, size_t len) {
  in.clear();
  in.seekg(static_cast<std::streamoff>(off));
  in.read(static_cast<char*>(out), static_cast<std::streamsize>(len));
  return static_cast<size_t>(in.gcount()) == len;
}
}  // namespace

ElfFile ElfFile::open(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw ReaderError(kNotPython, "cannot open " + path + " to look for the Python interpreter");
  Elf64_Ehdr eh{};
  if (!read_at(in, 0, &eh, sizeof eh) || memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0 || eh.e_ident[EI_CLASS] != ELFCLASS64)
    throw ReaderError(kNotPython, path + " is not a 64-bit ELF file");
  ElfFile f;
  f.path_ = path;
  f.is_dyn_ = eh.e_type == ET_DYN;
  f.machine_ = eh.e_machine;

  std::vector<Elf64_Phdr> ph(eh.e_phnum);
  if (eh.e_phnum > 0 && eh.e_phnum < 256 && read_at(in, eh.e_phoff, ph.data(), ph.size() * sizeof(Elf64_Phdr))) {
    bool first = true;
    for (auto& p : ph) {
      if (p.p_type != PT_LOAD) continue;
      if (first || p.p_vaddr < f.first_load_vaddr_) f.first_load_vaddr_ = p.p_vaddr;
      first = false;
    }
  }

  if (eh.e_shnum == 0 || eh.e_shnum > 4096) return f;
  std::vector<Elf64_Shdr> sh(eh.e_shnum);
  if (!read_at(in, eh.e_shoff, sh.data(), sh.size() * sizeof(Elf64_Shdr))) return f;
  std::string shstr;
  if (eh.e_shstrndx < sh.size()) {
    shstr.resize(std::min<uint64_t>(sh[eh.e_shstrndx].sh_size, 1 << 20));
    read_at(in, sh[eh.e_shstrndx].sh_offset, shstr.data(), shstr.size());
  }
  for (auto& s : sh) {
    ElfSection es;
    if (s.sh_name < shstr.size()) es.name = std::string(shstr.c_str() + s.sh_name);
    es.addr = s.sh_addr; es.size = s.sh_size; es.file_offset = s.sh_offset; es.type = s.sh_type;
    f.sections_.push_back(es);
  }
  for (auto& s : sh) {
    if (s.sh_type != SHT_SYMTAB && s.sh_type != SHT_DYNSYM) continue;
    if (s.sh_type == SHT_SYMTAB) f.has_symtab_ = true;
    if (s.sh_link >= sh.size() || s.sh_entsize != sizeof(Elf64_Sym)) continue;
    const Elf64_Shdr& strs = sh[s.sh_link];
    std::string names(std::min<uint64_t>(strs.sh_size, 256 << 20), '\0');
    if (!read_at(in, strs.sh_offset, names.data(), names.size())) continue;
    size_t count = std::min<uint64_t>(s.sh_size / sizeof(Elf64_Sym), 4 << 20);
    std::vector<Elf64_Sym> syms(count);
    if (!read_at(in, s.sh_offset, syms.data(), count * sizeof(Elf64_Sym))) continue;
    for (auto& sym : syms) {
      if (sym.st_name >= names.size() || sym.st_value == 0) continue;
      std::string n(names.c_str() + sym.st_name);
      if (interesting(n)) f.symbols_.push_back({n, sym.st_value});
    }
  }
  return f;
}

std::optional<uint64_t> ElfFile::symbol(const std::string& name) const {
  for (auto& s : symbols_) if (s.name == name) return s.value;
  return std::nullopt;
}

const ElfSection* ElfFile::section(const std::string& name) const {
  for (auto& s : sections_) if (s.name == name) return &s;
  return nullptr;
}

std::string ElfFile::section_bytes(const ElfSection& s, size_t max_bytes) const {
  if (s.type == SHT_NOBITS) return {};
  std::ifstream in(path_, std::ios::binary);
  std::string out(std::min<uint64_t>(s.size, max_bytes), '\0');
  if (!read_at(in, s.file_offset, out.data(), out.size())) return {};
  return out;
}

}  // namespace periscope
