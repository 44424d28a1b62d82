# -*- coding: utf-8 -*-
"""Async-dump test target: an event loop with named tasks in a known await tree.

usage: python3.14+ async_tree.py TRUTH_JSON [LIFETIME_SECONDS [FORGE]]

    main                      (asyncio.run's task, renamed "main")
      gathers fetch-a, fetch-b
    fetch-a                   parks in asyncio.sleep()
    fetch-b                   awaits a TaskGroup holding parse-1, parse-2
    parse-1, parse-2          park on an asyncio.Event
    (one unnamed task, created without a name: asyncio calls it Task-N)

Once every task is parked, TRUTH_JSON is written atomically from inside:
pid, version, and per task (asyncio.all_tasks()) its name, the names of the
tasks awaiting it (the tree above), and the qualified names of its coroutine
chain, innermost first, followed through cr_await. After LIFETIME_SECONDS
(default 120) the event is set and the process exits with status 0.

FORGE makes the target hostile to readers, after taking its truth (CPython
itself never reads what is forged, so the loop keeps running):
  outside  its AsyncioDebug section claims task_node lies at offset 4096,
           far outside the task object
  cycle    parse-2's task-list link points back at itself, so the thread's
           task list never returns to its head
The truth then also holds "forged" (the mode).
"""
import asyncio
import ctypes
import os
import struct
import sys

from _truth import die_with_parent, write_json_atomic

TRUTH = sys.argv[1]
LIFETIME = float(sys.argv[2]) if len(sys.argv) > 2 else 120.0
FORGE = sys.argv[3] if len(sys.argv) > 3 else None
RELEASE = None
PARKED = set()


async def park_on_event(name):
    PARKED.add(name)
    await RELEASE.wait()


async def parse(name):
    await park_on_event(name)


async def fetch_a():
    PARKED.add('fetch-a')
    await asyncio.sleep(LIFETIME)


async def fetch_b():
    async with asyncio.TaskGroup() as tg:
        tg.create_task(parse('parse-1'), name='parse-1')
        tg.create_task(parse('parse-2'), name='parse-2')


async def unnamed():
    PARKED.add('unnamed')
    await RELEASE.wait()


def coroutine_stack(task):
    """Qualified names of the task's coroutine chain, innermost first: each
    coroutine's cr_await, while that is a coroutine too (what a reader outside
    follows; a future or other awaitable ends the chain)."""
    names = []
    coro = task.get_coro()
    while asyncio.iscoroutine(coro) and hasattr(coro, 'cr_code'):
        names.append(coro.cr_code.co_qualname)
        coro = coro.cr_await
    return names[::-1]


def asyncio_debug_address():
    """Where this process's AsyncioDebug section is loaded: in the _asyncio
    extension, or in the executable when _asyncio is built in."""
    import _asyncio
    maps = [line.split() for line in open('/proc/self/maps')]
    for path in (getattr(_asyncio, '__file__', None), '/proc/self/exe'):
        if not path:
            continue
        path = os.path.realpath(path)
        with open(path, 'rb') as f:
            data = f.read()
        e_type = struct.unpack_from('<H', data, 16)[0]
        phoff, shoff = struct.unpack_from('<QQ', data, 32)
        phentsize, phnum, shentsize, shnum, shstrndx = struct.unpack_from('<HHHHH', data, 54)
        section = lambda i: struct.unpack_from('<IIQQQQIIQQ', data, shoff + i * shentsize)
        names = section(shstrndx)[4]
        for i in range(shnum):
            h = section(i)
            if data[names + h[0]:data.index(b'\0', names + h[0])] != b'.AsyncioDebug':
                continue
            addr = h[3]
            if e_type == 3:  # ET_DYN: add the load bias
                loads = [struct.unpack_from('<IIQQ', data, phoff + j * phentsize) for j in range(phnum)]
                first = min(p[3] for p in loads if p[0] == 1)
                start = min(int(m[0].split('-')[0], 16) for m in maps if len(m) >= 6 and m[5] == path and int(m[2], 16) == 0)
                addr += start - (first & ~0xfff)
            return addr
    raise SystemExit('no AsyncioDebug section found')


def forge(mode):
    section = asyncio_debug_address()
    task_node = ctypes.c_uint64.from_address(section + 6 * 8)  # asyncio_task_object.task_node
    if mode == 'outside':
        task_node.value = 4096
    elif mode == 'cycle':
        victim = [t for t in asyncio.all_tasks() if t.get_name() == 'parse-2'][0]
        node = id(victim) + task_node.value
        ctypes.c_uint64.from_address(node).value = node  # llist_node.next -> itself
    else:
        raise SystemExit('unknown forge mode %r' % mode)


def write_truth():
    tasks = []
    for task in asyncio.all_tasks():
        tasks.append({
            'name': task.get_name(),
            'awaited_by': sorted(EXPECTED_PARENTS.get(task.get_name(), [])),
            'stack': coroutine_stack(task),
        })
    data = {'pid': os.getpid(), 'version': '%d.%d.%d' % tuple(sys.version_info[:3]), 'tasks': tasks, 'forged': FORGE}
    # all_tasks() walks the very list a cycle would break: forge after it.
    if FORGE:
        forge(FORGE)
    write_json_atomic(TRUTH, data)
    os.rename(TRUTH + '.tmp', TRUTH)


# The tree this program builds: task name -> names of the tasks awaiting it.
EXPECTED_PARENTS = {
    'fetch-a': ['main'],
    'fetch-b': ['main'],
    'parse-1': ['fetch-b'],
    'parse-2': ['fetch-b'],
}


def announce_when_parked(loop):
    # A loop callback, not a task: the truth lists every task there is.
    if len(PARKED) < 4:  # fetch-a, parse-1, parse-2, unnamed
        loop.call_later(0.005, announce_when_parked, loop)
    else:
        write_truth()


async def main():
    global RELEASE
    RELEASE = asyncio.Event()
    asyncio.current_task().set_name('main')
    loop = asyncio.get_running_loop()
    other = asyncio.create_task(unnamed())
    loop.call_later(LIFETIME, RELEASE.set)
    loop.call_soon(announce_when_parked, loop)
    await asyncio.gather(
        asyncio.create_task(fetch_a(), name='fetch-a'),
        asyncio.create_task(fetch_b(), name='fetch-b'),
    )
    await other


if __name__ == '__main__':
    die_with_parent()
    asyncio.run(main())
