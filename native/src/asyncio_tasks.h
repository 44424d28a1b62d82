// asyncio tasks of a 3.14+ target: the _asyncio module publishes where its
// task objects keep their name, coroutine, "awaited by" and list links in an
// ELF section, AsyncioDebug (_Py_AsyncioModuleDebugOffsets). Every task a
// thread created is linked in that thread's list (tasks of threads that have
// exited move to the interpreter's list); a task's coroutine stack is the
// chain of coroutines each awaiting the next.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "interpreter.h"

namespace periscope {

struct AsyncioOffsets {
  // asyncio_task_object: offsets inside a TaskObj of task_size bytes.
  int64_t task_size = -1, task_name = -1, task_awaited_by = -1, task_is_task = -1, task_awaited_by_is_set = -1,
          task_coro = -1, task_node = -1;
  // asyncio_interpreter_state / asyncio_thread_state: inside PyInterpreterState / _PyThreadStateImpl.
  int64_t interp_tasks_head = -1;
  int64_t tstate_running_loop = -1, tstate_running_task = -1, tstate_tasks_head = -1;
};

// Finds the AsyncioDebug section in the target's executable, libpython or
// _asyncio extension and checks every offset against the struct sizes it
// reports (and their alignment). False with the reason in `why` when the
// section is absent (asyncio not imported, Python < 3.14) or unusable.
bool find_asyncio_offsets(const PythonProcess& proc, AsyncioOffsets* out, std::string* why);

// Checks a raw section (13 words): sizes plausible, every offset inside its
// struct and aligned.
bool parse_asyncio_offsets(const uint64_t* words, size_t count, AsyncioOffsets* out, std::string* why);

inline constexpr int kMaxTasks = 65536;        // per snapshot, across all lists
inline constexpr int kMaxCoroDepth = 1024;     // coroutines awaiting each other in one task
inline constexpr int64_t kMaxAwaitedBySet = 1 << 16;  // set table slots

}  // namespace periscope
