# -*- coding: utf-8 -*-
"""Record-test target: one busy thread splits its CPU between three functions.

usage: python cpu_split.py TRUTH_JSON [LIFETIME_SECONDS] [SHARE_A SHARE_B SHARE_C]

The main thread runs slices of about 1 ms, each in split_a, split_b or
split_c, chosen at random with the given weights (default 50/30/20). Every
slice is a pure-Python loop inside the function's own frame, so while it runs
the innermost Python frame is that function. Around every call the thread
reads its OWN CPU clock (CLOCK_THREAD_CPUTIME_ID) and wall clock and adds the
difference to the function's cumulative totals.

Every ~50 ms (between slices, never inside one) it rewrites TRUTH_JSON
atomically (tmp + rename) with those totals, so the test can take the
difference between two readings as the ground truth for a recording window.

Runs on 2.7 and 3.6+ (no f-strings, no py3-only syntax).
"""
import json
import os
import random
import sys
import time

from _truth import die_with_parent

TRUTH = sys.argv[1]
LIFETIME = float(sys.argv[2]) if len(sys.argv) > 2 else 120.0
WEIGHTS = [float(x) for x in sys.argv[3:6]] if len(sys.argv) > 5 else [50.0, 30.0, 20.0]
SLICE_SECONDS = 0.001
PUBLISH_EVERY = 0.05

try:
    _range = xrange  # noqa: F821 (2.7)
except NameError:
    _range = range


def _thread_clock():
    """A per-thread CPU clock in seconds, and what it is."""
    if hasattr(time, 'thread_time'):  # 3.7+
        return time.thread_time, 'time.thread_time'
    if hasattr(time, 'clock_gettime') and hasattr(time, 'CLOCK_THREAD_CPUTIME_ID'):  # 3.3+
        cid = time.CLOCK_THREAD_CPUTIME_ID
        return (lambda: time.clock_gettime(cid)), 'time.clock_gettime(CLOCK_THREAD_CPUTIME_ID)'
    # 2.7: clock_gettime(CLOCK_THREAD_CPUTIME_ID = 3) through ctypes.
    import ctypes

    class Timespec(ctypes.Structure):
        _fields_ = [('tv_sec', ctypes.c_long), ('tv_nsec', ctypes.c_long)]

    libc = ctypes.CDLL(None, use_errno=True)
    fn = libc.clock_gettime
    fn.argtypes = [ctypes.c_int, ctypes.POINTER(Timespec)]
    ts = Timespec()
    ref = ctypes.byref(ts)

    def clock():
        if fn(3, ref) != 0:
            raise OSError(ctypes.get_errno(), 'clock_gettime')
        return ts.tv_sec + ts.tv_nsec * 1e-9
    return clock, 'ctypes clock_gettime(CLOCK_THREAD_CPUTIME_ID)'


cpu_clock, CLOCK_KIND = _thread_clock()
wall_clock = getattr(time, 'monotonic', time.time)


# --- the three functions: each loop runs in the function's own frame ----------

def split_a(n):
    x = 0
    for _ in _range(n):
        x = (x * 31 + 7) % 1000003
    return x


def split_b(n):
    x = 0
    for _ in _range(n):
        x = (x * 31 + 7) % 1000003
    return x


def split_c(n):
    x = 0
    for _ in _range(n):
        x = (x * 31 + 7) % 1000003
    return x


def calibrate():
    """Loop iterations per SLICE_SECONDS of this thread's CPU."""
    n = 2000
    while True:
        t0 = cpu_clock()
        split_a(n)
        dt = cpu_clock() - t0
        if dt > 0.05:
            return max(1, int(n * SLICE_SECONDS / dt))
        n *= 2


def publish(data):
    tmp = TRUTH + '.tmp'
    with open(tmp, 'w') as f:
        json.dump(data, f)
    os.rename(tmp, TRUTH)


def main():
    die_with_parent()
    start = wall_clock()
    per_slice = calibrate()
    names = ['split_a', 'split_b', 'split_c']
    funcs = [split_a, split_b, split_c]
    total = sum(WEIGHTS)
    cumulative = []
    acc = 0.0
    for w in WEIGHTS:
        acc += w / total
        cumulative.append(acc)
    cpu = [0.0, 0.0, 0.0]
    wall = [0.0, 0.0, 0.0]
    calls = [0, 0, 0]
    rng = random.Random(12345)
    seq = 0
    next_publish = 0.0
    while True:
        now = wall_clock()
        if now >= next_publish:
            seq += 1
            publish({
                'pid': os.getpid(),
                'version': '%d.%d.%d' % tuple(sys.version_info[:3]),
                'clock': CLOCK_KIND,
                'per_slice': per_slice,
                'weights': WEIGHTS,
                'seq': seq,
                'cpu': dict(zip(names, cpu)),
                'wall': dict(zip(names, wall)),
                'calls': dict(zip(names, calls)),
            })
            if now - start > LIFETIME:
                os._exit(0)
            next_publish = now + PUBLISH_EVERY
        r = rng.random()
        i = 0 if r < cumulative[0] else 1 if r < cumulative[1] else 2
        fn = funcs[i]
        w0 = wall_clock()
        c0 = cpu_clock()
        fn(per_slice)
        c1 = cpu_clock()
        w1 = wall_clock()
        cpu[i] += c1 - c0
        wall[i] += w1 - w0
        calls[i] += 1


if __name__ == '__main__':
    main()
