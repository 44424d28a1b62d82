# -*- coding: utf-8 -*-
"""Top-test target: one thread busy ~90% of the time in hot_function and ~10%
in cold_function, while the main thread sleeps (idle) in park().

usage: python top_hot.py TRUTH_JSON [LIFETIME_SECONDS]

Each busy function spins in its own body (the clock is read through C, so no
other Python frame is ever innermost), alternating 90 ms hot, 10 ms cold.
Writes TRUTH_JSON (atomically) once the worker runs, then exits normally
after LIFETIME_SECONDS (default 120). Runs on 2.7 and 3.6+.
"""
import os
import sys
import threading
import time

from _truth import write_json_atomic, interpreter_info, die_with_parent

TRUTH = sys.argv[1]
LIFETIME = float(sys.argv[2]) if len(sys.argv) > 2 else 120.0
HOT_SECONDS = 0.09
COLD_SECONDS = 0.01
STARTED = threading.Event()


def hot_function():
    end = time.time() + HOT_SECONDS
    x = 0
    while time.time() < end:
        x = (x * 31 + 7) % 1000003
    return x


def cold_function():
    end = time.time() + COLD_SECONDS
    x = 0
    while time.time() < end:
        x = (x * 17 + 3) % 1000003
    return x


def worker():
    STARTED.set()
    while True:
        hot_function()
        cold_function()


def park(seconds):
    time.sleep(seconds)


def main():
    die_with_parent()
    start = time.time()
    t = threading.Thread(target=worker, name='worker')
    t.daemon = True
    t.start()
    STARTED.wait()
    data = interpreter_info()
    data['hot'] = 'hot_function'
    data['cold'] = 'cold_function'
    data['idle'] = 'park'
    write_json_atomic(TRUTH, data)
    os.rename(TRUTH + '.tmp', TRUTH)
    park(max(0.0, start + LIFETIME - time.time()))


if __name__ == '__main__':
    main()
