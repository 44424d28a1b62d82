# -*- coding: utf-8 -*-
"""Dump-test target: named threads parked in known call chains.

usage: python parked.py TRUTH_JSON [LIFETIME_SECONDS]

Every parked thread takes its ground truth and blocks on the SAME line:

    rec['frames'] = walk(sys._getframe()); time.sleep(FOREVER)

time.sleep is C, so while the thread sleeps its innermost Python frame is
that frame, stopped on that line, and every outer frame is stopped on the
line of its call -- exactly what the snapshot recorded. Once every thread is
blocked in the sleep syscall (checked through /proc/self/task/TID/syscall)
plus a busy thread is spinning, the main thread writes the ground truth
atomically (tmp + rename) and parks too, again on the line of its snapshot.

Runs on 2.7 and 3.6+ (no f-strings, no py3-only syntax here; py3-only chains
live in parked_py3.py and 中文模块.py and are imported only on py3).
"""
import os
import sys
import threading
import time

from _truth import PY3, walk, thread_record, wait_parked, write_json_atomic, interpreter_info, die_with_parent

FOREVER = 100000
TRUTH = sys.argv[1]
LIFETIME = float(sys.argv[2]) if len(sys.argv) > 2 else 120.0

sys.setrecursionlimit(10000)
RECORDS = []


# --- leaves and chains (2.7-compatible) -------------------------------------

def depth1(rec):
    rec['frames'] = walk(sys._getframe()); time.sleep(FOREVER)


def recurse(rec, n):
    if n <= 1:
        rec['frames'] = walk(sys._getframe()); time.sleep(FOREVER)
    return recurse(rec, n - 1)


class Parker(object):
    def method(self, rec):
        rec['frames'] = walk(sys._getframe()); time.sleep(FOREVER)

    @classmethod
    def klass(cls, rec):
        rec['frames'] = walk(sys._getframe()); time.sleep(FOREVER)

    @staticmethod
    def static(rec):
        rec['frames'] = walk(sys._getframe()); time.sleep(FOREVER)

    class Inner(object):
        def nested_method(self, rec):
            rec['frames'] = walk(sys._getframe()); time.sleep(FOREVER)


def make_closure(delay):
    def closure(rec):
        rec['frames'] = walk(sys._getframe()); time.sleep(delay)
    return closure


def make_lambda():
    return lambda rec: (rec.__setitem__('frames', walk(sys._getframe())), time.sleep(FOREVER))


def parked_generator(rec):
    yield 0
    rec['frames'] = walk(sys._getframe()); time.sleep(FOREVER)
    yield 1


def drive_generator(rec):
    for value in parked_generator(rec):
        pass


def through_c(rec):
    # map() is C: the reader has to step over the C call between two
    # Python frames (an entry/shim frame on 3.11+).
    return list(map(depth1, [rec]))


DYNAMIC_SOURCE = '''
def dynamic_leaf(rec, walk, sys, time, forever):
    rec['frames'] = walk(sys._getframe()); time.sleep(forever)
'''


def dynamic(rec):
    namespace = {}
    exec(compile(DYNAMIC_SOURCE, '<periscope-dynamic>', 'exec'), namespace)
    namespace['dynamic_leaf'](rec, walk, sys, time, FOREVER)


def renamed(rec):
    # A thread that renames itself after it started: the dump must show the
    # name the program set last.
    threading.current_thread().name = 'renamed-after-start'
    rec['name'] = 'renamed-after-start'
    rec['frames'] = walk(sys._getframe()); time.sleep(FOREVER)


def watchdog(rec):
    # Parked like the others; also ends the target if nobody kills it.
    rec['frames'] = walk(sys._getframe()); time.sleep(LIFETIME); os._exit(3)


def busy_loop(rec):
    frames = walk(sys._getframe())
    rec['busy_lines'] = [frames[0]['line'] + 3, frames[0]['line'] + 5]  # x = 0 .. loop body
    rec['frames'] = frames
    x = 0
    while True:
        x = (x * 31 + 7) % 1000003


# --- threads ----------------------------------------------------------------

def thread_main(name, kind, fn, args, busy):
    rec = thread_record(name, kind, busy)
    RECORDS.append(rec)
    fn(rec, *args)


def start(name, kind, fn, args=(), busy=False):
    t = threading.Thread(target=thread_main, name=name, args=(name, kind, fn, args, busy))
    t.daemon = True
    t.start()
    return t


def self_check(records):
    """Cross-check every snapshot against the live stacks (sys._current_frames)
    while the threads sleep: proves the one-line trick holds on this version."""
    current = sys._current_frames()
    for rec in records:
        live = walk(current[rec['ident']])
        if rec['busy']:
            lo, hi = rec['busy_lines']
            ok = live[1:] == rec['frames'][1:] and live[0]['name'] == rec['frames'][0]['name'] and lo <= live[0]['line'] <= hi
        else:
            ok = live == rec['frames']
        if not ok:
            sys.stderr.write('parked.py: self-check failed for %s:\n snapshot %r\n live %r\n' % (rec['kind'], rec['frames'][:3], live[:3]))
            sys.stderr.flush()
            os._exit(2)


def park_main(rec, data):
    rec['frames'] = walk(sys._getframe()); write_json_atomic(TRUTH, data); os.rename(TRUTH + '.tmp', TRUTH); time.sleep(FOREVER)


def main():
    die_with_parent()
    chains = [
        ('depth-1', 'depth1', depth1, ()),
        ('depth-50', 'depth50', recurse, (50,)),
        ('depth-700', 'depth700', recurse, (700,)),
        ('method', 'method', Parker().method, ()),
        ('classmethod', 'classmethod', Parker.klass, ()),
        ('staticmethod', 'staticmethod', Parker.static, ()),
        ('nested-class', 'nested_class', Parker.Inner().nested_method, ()),
        ('closure', 'closure', make_closure(FOREVER), ()),
        ('lambda', 'lambda', make_lambda(), ()),
        ('generator', 'generator', drive_generator, ()),
        ('through-c', 'through_c', through_c, ()),
        ('dynamic', 'dynamic', dynamic, ()),
        ('named-at-start', 'renamed', renamed, ()),
        ('watchdog', 'watchdog', watchdog, ()),
    ]
    if PY3:
        import parked_py3
        chains.extend(parked_py3.chains(FOREVER))
    for name, kind, fn, args in chains:
        start(name, kind, fn, args)
    while len(RECORDS) < len(chains):
        time.sleep(0.005)
    wait_parked(RECORDS)

    # Only now the spinner: it would otherwise compete for the GIL with the
    # threads that are still on their way to their sleep.
    start('busy', 'busy', busy_loop, busy=True)
    while len(RECORDS) < len(chains) + 1 or 'frames' not in RECORDS[-1]:
        time.sleep(0.005)

    self_check(RECORDS)

    # The main thread renamed too: readers that assume "MainThread" are wrong.
    threading.current_thread().name = 'main-renamed'
    main_rec = thread_record(threading.current_thread().name, 'main')
    data = interpreter_info()
    data['threads'] = RECORDS + [main_rec]
    park_main(main_rec, data)


if __name__ == '__main__':
    main()
