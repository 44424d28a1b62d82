# -*- coding: utf-8 -*-
"""Record-test target: two named busy threads and a sleeping main thread.

usage: python named_threads.py TRUTH_JSON [LIFETIME_SECONDS]

Threads "worker-alpha" and "worker-beta" spin in alpha_work() and
beta_work(); the main thread sleeps in main_sleep(). Once both workers run,
TRUTH_JSON is written atomically: pid, version, and per thread its name and
OS thread id. After LIFETIME_SECONDS (default 120) the process exits with
status 0 (a normal exit from the main thread; the workers are daemons).

Runs on 2.7 and 3.6+.
"""
import json
import os
import sys
import threading
import time

from _truth import die_with_parent, native_id

TRUTH = sys.argv[1]
LIFETIME = float(sys.argv[2]) if len(sys.argv) > 2 else 120.0
RECORDS = []


def alpha_work():
    x = 0
    while True:
        x = (x * 31 + 7) % 1000003


def beta_work():
    x = 0
    while True:
        x = (x * 17 + 3) % 1000033


def worker(fn):
    RECORDS.append({'name': threading.current_thread().name, 'native_id': native_id()})
    fn()


def main_sleep(seconds):
    time.sleep(seconds)


def main():
    die_with_parent()
    start = time.time()
    for name, fn in (('worker-alpha', alpha_work), ('worker-beta', beta_work)):
        t = threading.Thread(target=worker, name=name, args=(fn,))
        t.daemon = True
        t.start()
    while len(RECORDS) < 2:
        time.sleep(0.005)
    data = {
        'pid': os.getpid(),
        'version': '%d.%d.%d' % tuple(sys.version_info[:3]),
        'threads': RECORDS + [{'name': threading.current_thread().name, 'native_id': native_id()}],
    }
    tmp = TRUTH + '.tmp'
    with open(tmp, 'w') as f:
        json.dump(data, f)
    os.rename(tmp, TRUTH)
    main_sleep(max(0.0, start + LIFETIME - time.time()))


if __name__ == '__main__':
    main()
