# -*- coding: utf-8 -*-
"""Dump-test target that goes away while it is being dumped.

usage: python exits_soon.py READY_JSON LIFETIME_MS [normal|hard]

Starts a few threads that keep creating and destroying Python frames (deep
recursion), plus one that keeps starting and joining short-lived threads, so
the thread list and every stack change all the time. Writes READY_JSON
(atomically) once they run, then exits LIFETIME_MS after start: "normal"
(default) returns from the main module, so the interpreter finalizes while
the daemon threads still run; "hard" calls os._exit(0) from a worker thread.
Runs on 2.7 and 3.6+.
"""
import os
import sys
import threading
import time

from _truth import write_json_atomic, interpreter_info, die_with_parent

START = time.time()
READY = sys.argv[1]
LIFETIME = float(sys.argv[2]) / 1000.0
MODE = sys.argv[3] if len(sys.argv) > 3 else 'normal'

sys.setrecursionlimit(10000)


def fib(n):
    if n < 2:
        return n
    return fib(n - 1) + fib(n - 2)


def dive(depth):
    if depth <= 0:
        return fib(12)
    return dive(depth - 1)


def churn_frames(depth):
    while True:
        dive(depth)


def short_lived(n):
    return dive(n)


def churn_threads():
    n = 0
    while True:
        n += 1
        t = threading.Thread(target=short_lived, args=(n % 40,), name='short-%d' % n)
        t.daemon = True
        t.start()
        t.join()


def hard_exit():
    time.sleep(max(0.0, START + LIFETIME - time.time()))
    os._exit(0)


def start(target, name, args=()):
    t = threading.Thread(target=target, name=name, args=args)
    t.daemon = True
    t.start()


def main():
    die_with_parent()
    for i, depth in enumerate((5, 60, 300)):
        start(churn_frames, 'churn-frames-%d' % i, (depth,))
    start(churn_threads, 'churn-threads')
    if MODE == 'hard':
        start(hard_exit, 'hard-exit')
    data = interpreter_info()
    data['mode'] = MODE
    write_json_atomic(READY, data)
    os.rename(READY + '.tmp', READY)
    time.sleep(max(0.0, START + LIFETIME - time.time()) + (1.0 if MODE == 'hard' else 0.0))


if __name__ == '__main__':
    main()
