"""Debug-offsets test target: a 3.13+ interpreter that forges its own
_Py_DebugOffsets table, as a hostile or broken target would, then idles.

usage: python forged_offsets.py TRUTH_JSON MODE

CPython itself never reads the table (only out-of-process tools do), so the
program keeps running normally. MODE:
  outside    thread_state.current_frame points far past sizeof(PyThreadState)
  unaligned  interpreter_state.threads_head is moved off its 8-byte alignment
  cookie     the "xdebugpy" cookie is overwritten
  version    the version word claims another minor version
  intact     nothing is changed (the control case)

The truth file holds the pid and the field that was forged.
"""
import ctypes
import os
import sys
import time

from _truth import die_with_parent, write_json_atomic

TRUTH, MODE = sys.argv[1], sys.argv[2]
V = sys.version_info[:2]

# Word positions in _Py_DebugOffsets (after cookie, version, free_threaded):
# runtime_state has 3 words; interpreter_state 13 on 3.13, 16 from 3.14.
HEADER = 24
RUNTIME_WORDS = 3
INTERP_WORDS = 13 if V == (3, 13) else 16


def word_at(index):
    return HEADER + 8 * index


def main():
    die_with_parent()
    runtime = ctypes.addressof(ctypes.c_char.in_dll(ctypes.pythonapi, '_PyRuntime'))
    assert ctypes.string_at(runtime, 8) == b'xdebugpy', 'no debug offsets at _PyRuntime'
    interp = RUNTIME_WORDS  # interpreter_state.size is this word
    thread = interp + INTERP_WORDS  # thread_state.size
    field = None
    if MODE == 'outside':
        field = 'thread_state.current_frame'
        ctypes.c_uint64.from_address(runtime + word_at(thread + 4)).value = 1 << 19
    elif MODE == 'unaligned':
        field = 'interpreter_state.threads_head'
        slot = ctypes.c_uint64.from_address(runtime + word_at(interp + 3))
        slot.value = slot.value + 4
    elif MODE == 'cookie':
        field = 'cookie'
        ctypes.memmove(runtime, b'xdebugXX', 8)
    elif MODE == 'version':
        field = 'version'
        slot = ctypes.c_uint64.from_address(runtime + 8)
        slot.value = slot.value ^ (1 << 16)  # another minor version
    elif MODE != 'intact':
        raise SystemExit('unknown mode %r' % MODE)
    write_json_atomic(TRUTH, {'pid': os.getpid(), 'field': field})
    os.rename(TRUTH + '.tmp', TRUTH)
    while True:
        time.sleep(1)


if __name__ == '__main__':
    main()
