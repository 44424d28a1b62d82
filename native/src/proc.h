// What /proc says about a process: its mappings, command line, threads and
// their scheduler state, and its children.
#pragma once
#include <sys/types.h>
#include <cstdint>
#include <string>
#include <vector>

namespace periscope {

struct Mapping {
  uint64_t start = 0, end = 0, offset = 0;
  std::string perms;  // "r-xp"
  std::string path;   // as the target sees it ("" for anonymous)
};

bool process_exists(pid_t pid);
std::vector<Mapping> read_maps(pid_t pid);
std::string read_cmdline(pid_t pid);        // args joined by spaces
std::string read_exe_path(pid_t pid);       // readlink /proc/PID/exe ("" if unreadable)
std::vector<pid_t> list_threads(pid_t pid); // /proc/PID/task
// Scheduler state letter from /proc/PID/task/TID/stat ('R', 'S', 'D', …), 0 if gone.
char thread_state(pid_t pid, pid_t tid);
std::vector<pid_t> list_children(pid_t pid);  // direct children, via /proc/PID/task/*/children
uid_t process_uid(pid_t pid);
// Path through which the agent can open a file the target has mapped, even
// when the target lives in another mount namespace (a container).
std::string target_file_path(pid_t pid, const std::string& path);

}  // namespace periscope
