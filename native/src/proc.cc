#include "proc.h"

#include <dirent.h>
#include <signal.h>
#include <unistd.h>
#include <cerrno>
#include <fstream>
#include <sstream>

namespace periscope {

namespace {
std::string slurp(const std::string& path, size_t max = 1 << 20) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return {};
  std::string out;
  char buf[8192];
  while (out.size() < max && in.read(buf, sizeof buf), in.gcount() > 0) out.append(buf, in.gcount());
  return out;
}

std::vector<pid_t> numeric_entries(const std::string& dir) {
  std::vector<pid_t> out;
  DIR* d = opendir(dir.c_str());
  if (!d) return out;
  while (dirent* e = readdir(d)) {
    char* end = nullptr;
    long v = strtol(e->d_name, &end, 10);
    if (end && *end == 0 && v > 0) out.push_back(static_cast<pid_t>(v));
  }
  closedir(d);
  return out;
}
}  // namespace

bool process_exists(pid_t pid) {
  if (pid <= 0) return false;
  if (kill(pid, 0) == 0 || errno == EPERM) {
    // A zombie has exited already; it has no memory left to read.
    std::string stat = slurp("/proc/" + std::to_string(pid) + "/stat", 4096);
    auto close = stat.rfind(')');
    return !(close != std::string::npos && close + 2 < stat.size() && stat[close + 2] == 'Z');
  }
  return false;
}

std::vector<Mapping> read_maps(pid_t pid) {
  std::vector<Mapping> out;
  std::istringstream in(slurp("/proc/" + std::to_string(pid) + "/maps", 64 << 20));
  std::string line;
  while (std::getline(in, line)) {
    Mapping m;
    char perms[8] = {0};
    unsigned long long start, end, offset;
    int pathpos = 0;
    if (sscanf(line.c_str(), "%llx-%llx %7s %llx %*s %*s %n", &start, &end, perms, &offset, &pathpos) < 4) continue;
    m.start = start; m.end = end; m.offset = offset; m.perms = perms;
    if (pathpos > 0 && static_cast<size_t>(pathpos) < line.size()) m.path = line.substr(pathpos);
    out.push_back(std::move(m));
  }
  return out;
}

std::string read_cmdline(pid_t pid) {
  std::string raw = slurp("/proc/" + std::to_string(pid) + "/cmdline", 64 << 10);
  while (!raw.empty() && raw.back() == '\0') raw.pop_back();
  for (char& c : raw) if (c == '\0') c = ' ';
  return raw;
}

std::string read_exe_path(pid_t pid) {
  char buf[4096];
  ssize_t n = readlink(("/proc/" + std::to_string(pid) + "/exe").c_str(), buf, sizeof buf - 1);
  if (n <= 0) return {};
  return std::string(buf, n);
}

std::vector<pid_t> list_threads(pid_t pid) {
  return numeric_entries("/proc/" + std::to_string(pid) + "/task");
}

char thread_state(pid_t pid, pid_t tid) {
  std::string stat = slurp("/proc/" + std::to_string(pid) + "/task/" + std::to_string(tid) + "/stat", 4096);
  // The command name may contain spaces and parentheses; the state follows the last ')'.
  auto close = stat.rfind(')');
  if (close == std::string::npos || close + 2 >= stat.size()) return 0;
  return stat[close + 2];
}

std::vector<pid_t> list_children(pid_t pid) {
  std::vector<pid_t> out;
  for (pid_t tid : list_threads(pid)) {
    std::istringstream in(slurp("/proc/" + std::to_string(pid) + "/task/" + std::to_string(tid) + "/children", 1 << 20));
    pid_t c;
    while (in >> c) out.push_back(c);
  }
  return out;
}

uid_t process_uid(pid_t pid) {
  std::istringstream in(slurp("/proc/" + std::to_string(pid) + "/status", 1 << 16));
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("Uid:", 0) == 0) return static_cast<uid_t>(strtoul(line.c_str() + 4, nullptr, 10));
  }
  return static_cast<uid_t>(-1);
}

std::string target_file_path(pid_t pid, const std::string& path) {
  std::string via_root = "/proc/" + std::to_string(pid) + "/root" + path;
  if (access(via_root.c_str(), R_OK) == 0) return via_root;
  return path;
}

}  // namespace periscope
