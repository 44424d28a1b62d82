# -*- coding: utf-8 -*-
"""Dump-test target for `periscope dump --subprocesses`.

usage: python parent_with_children.py TRUTH_JSON [LIFETIME_SECONDS]

The parent starts two Python children -- one with os.fork() (same image, no
exec) and one with subprocess.Popen(sys.executable ...) -- each of which
parks its main thread in child_park() and a second thread ("child-worker") in
child_worker_park(), writing its own ground truth. The parent then parks its
main thread in parent_park() and writes TRUTH_JSON (atomically): its own
threads, plus per child its pid, how it was started and its threads. Every
parked frame list is taken on the line that blocks (see parked.py).
Runs on 2.7 and 3.6+.
"""
import json
import os
import subprocess
import sys
import threading
import time

from _truth import walk, thread_record, wait_parked, write_json_atomic, interpreter_info, die_with_parent

LIFETIME = 120.0


def child_worker_park(rec):
    rec['frames'] = walk(sys._getframe()); time.sleep(LIFETIME)


def child_worker(rec):
    child_worker_park(rec)


def child_park(rec, path, data):
    rec['frames'] = walk(sys._getframe()); write_json_atomic(path, data); os.rename(path + '.tmp', path); time.sleep(LIFETIME); os._exit(0)


def child_main(path, how):
    die_with_parent()
    records = []

    def run():
        rec = thread_record('child-worker', 'child_worker')
        records.append(rec)
        child_worker(rec)

    t = threading.Thread(target=run, name='child-worker')
    t.daemon = True
    t.start()
    while not records:
        time.sleep(0.005)
    wait_parked(records)
    main_rec = thread_record(threading.current_thread().name, 'child_main')
    data = interpreter_info()
    data['how'] = how
    data['threads'] = records + [main_rec]
    child_park(main_rec, path, data)


def parent_park(rec, path, data):
    rec['frames'] = walk(sys._getframe()); write_json_atomic(path, data); os.rename(path + '.tmp', path); time.sleep(LIFETIME); os._exit(0)


def wait_file(path, proc_check, timeout=60.0):
    deadline = time.time() + timeout
    while not os.path.exists(path):
        proc_check()
        if time.time() > deadline:
            raise RuntimeError('child never wrote %s' % path)
        time.sleep(0.01)
    with open(path) as f:
        return json.load(f)


def main():
    global LIFETIME
    truth = sys.argv[1]
    if len(sys.argv) > 2:
        LIFETIME = float(sys.argv[2])
    die_with_parent()

    fork_path = truth + '.fork-child'
    spawn_path = truth + '.spawn-child'

    pid = os.fork()
    if pid == 0:
        try:
            child_main(fork_path, 'fork')
        finally:
            os._exit(1)

    def fork_alive():
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            raise RuntimeError('fork child exited early: %r' % status)

    proc = subprocess.Popen([sys.executable, '-B', '-s', '-u', os.path.abspath(__file__), 'child', spawn_path, str(LIFETIME)])

    def spawn_alive():
        if proc.poll() is not None:
            raise RuntimeError('spawned child exited early: %r' % proc.returncode)

    children = [wait_file(fork_path, fork_alive), wait_file(spawn_path, spawn_alive)]
    main_rec = thread_record(threading.current_thread().name, 'parent_main')
    data = interpreter_info()
    data['threads'] = [main_rec]
    data['children'] = children
    parent_park(main_rec, truth, data)


if __name__ == '__main__':
    if len(sys.argv) > 1 and sys.argv[1] == 'child':
        LIFETIME = float(sys.argv[3])
        child_main(sys.argv[2], 'spawn')
    else:
        main()
