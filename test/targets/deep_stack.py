# -*- coding: utf-8 -*-
"""Dump-test target with one thread parked deeper than the reader walks.

usage: python deep_stack.py TRUTH_JSON DEPTH [SECONDS]

The thread "deep" recurses DEPTH frames (more than the native reader's 4096,
native/src/stack_walker.h kMaxFrames) and sleeps there, so its dump must say
the stack was truncated; the main thread's shallow stack must not. Writes the
thread's OS id and depth once it is parked. Runs on 2.7 and 3.6+.
"""
import os
import sys
import threading
import time

from _truth import die_with_parent, interpreter_info, thread_record, wait_parked, walk, write_json_atomic

TRUTH = sys.argv[1]
DEPTH = int(sys.argv[2])
SECONDS = float(sys.argv[3]) if len(sys.argv) > 3 else 120.0

sys.setrecursionlimit(DEPTH + 1000)


def dive(depth, rec):
    if depth > 1:
        return dive(depth - 1, rec)
    rec.update(thread_record('deep', 'deep'))
    rec['frames'] = walk(sys._getframe())  # last: its presence says the record is complete
    time.sleep(SECONDS)


def main():
    die_with_parent()
    rec = {}
    t = threading.Thread(target=lambda: dive(DEPTH, rec), name='deep')
    t.daemon = True
    t.start()
    while 'frames' not in rec:
        time.sleep(0.005)
    wait_parked([rec])
    data = interpreter_info()
    data['deep_tid'] = rec['native_id']
    data['deep_frames'] = len(rec['frames'])
    write_json_atomic(TRUTH, data)
    os.rename(TRUTH + '.tmp', TRUTH)
    time.sleep(SECONDS)


if __name__ == '__main__':
    main()
