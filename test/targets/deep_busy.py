# -*- coding: utf-8 -*-
"""Flame-graph target: one thread spins DEPTH frames deep (the hot path of a
deep stack) while the main thread sleeps.

usage: python deep_busy.py TRUTH_JSON DEPTH [SECONDS]

Writes TRUTH_JSON once the thread spins at its full depth. Runs on 2.7 and 3.6+.
"""
import os
import sys
import threading
import time

from _truth import die_with_parent, interpreter_info, write_json_atomic

TRUTH = sys.argv[1]
DEPTH = int(sys.argv[2])
SECONDS = float(sys.argv[3]) if len(sys.argv) > 3 else 120.0
sys.setrecursionlimit(DEPTH + 1000)
READY = threading.Event()


def spin_here():
    READY.set()
    end = time.time() + SECONDS
    x = 0
    while time.time() < end:
        x = (x * 31 + 7) % 1000003
    return x


def dive(depth):
    if depth <= 1:
        return spin_here()
    return dive(depth - 1)


def main():
    die_with_parent()
    t = threading.Thread(target=dive, args=(DEPTH,), name='deep')
    t.daemon = True
    t.start()
    READY.wait()
    data = interpreter_info()
    data['leaf'] = 'spin_here'
    write_json_atomic(TRUTH, data)
    os.rename(TRUTH + '.tmp', TRUTH)
    time.sleep(SECONDS)


if __name__ == '__main__':
    main()
