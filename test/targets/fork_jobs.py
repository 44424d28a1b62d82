# -*- coding: utf-8 -*-
"""Record-test target: a fork-per-job worker, like RQ's work horse.

usage: python fork_jobs.py TRUTH_JSON [LIFETIME_SECONDS] [CHILD_MS] [STARTUP_SHARE]

The parent forks one child per job, every ~100 ms, and waits for it
(os.waitpid). Each child lives about CHILD_MS (default 60) milliseconds:
first startup_work() for STARTUP_SHARE (default 0.4) of it -- standing in
for per-process start-up such as SQLAlchemy's configure_mappers() -- then
job_work() for the rest. Both spin in pure Python in their own frames until
a wall-clock deadline, so whatever samples them sees that frame innermost.

Each child measures its own split (wall and CPU seconds around each call)
and appends it as one JSON line to TRUTH_JSON + '.jobs' with a single
O_APPEND write, then leaves with os._exit(0). The parent writes TRUTH_JSON
(atomically) once at start: its pid and the jobs file path. The parent
itself sleeps or waits between jobs (idle).

Runs on 2.7 and 3.6+.
"""
import json
import os
import sys
import time

from _truth import die_with_parent

TRUTH = sys.argv[1]
LIFETIME = float(sys.argv[2]) if len(sys.argv) > 2 else 120.0
CHILD_SECONDS = (float(sys.argv[3]) if len(sys.argv) > 3 else 60.0) / 1000.0
STARTUP_SHARE = float(sys.argv[4]) if len(sys.argv) > 4 else 0.4
JOB_EVERY = 0.1
JOBS = TRUTH + '.jobs'

clock = getattr(time, 'monotonic', time.time)
cpu_clock = getattr(time, 'process_time', None) or time.clock  # per process; the child has one thread


# Both spin inline (no helper call): the innermost frame must be theirs.
def startup_work(seconds):
    deadline = clock() + seconds
    x = 0
    while clock() < deadline:
        for _ in range(200):
            x = (x * 31 + 7) % 1000003
    return x


def job_work(seconds):
    deadline = clock() + seconds
    x = 0
    while clock() < deadline:
        for _ in range(200):
            x = (x * 31 + 7) % 1000003
    return x


def child(job):
    w0 = clock()
    c0 = cpu_clock()
    startup_work(CHILD_SECONDS * STARTUP_SHARE)
    w1 = clock()
    c1 = cpu_clock()
    job_work(CHILD_SECONDS * (1.0 - STARTUP_SHARE))
    w2 = clock()
    c2 = cpu_clock()
    line = json.dumps({
        'pid': os.getpid(),
        'job': job,
        'startup_wall': w1 - w0,
        'job_wall': w2 - w1,
        'startup_cpu': c1 - c0,
        'job_cpu': c2 - c1,
    }) + '\n'
    fd = os.open(JOBS, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    os.write(fd, line.encode('utf-8'))
    os.close(fd)


def run_jobs():
    start = clock()
    job = 0
    next_job = start
    while clock() - start < LIFETIME:
        job += 1
        pid = os.fork()
        if pid == 0:
            try:
                child(job)
            finally:
                os._exit(0)
        os.waitpid(pid, 0)
        next_job += JOB_EVERY
        time.sleep(max(0.0, next_job - clock()))


def main():
    die_with_parent()
    data = {
        'pid': os.getpid(),
        'version': '%d.%d.%d' % tuple(sys.version_info[:3]),
        'jobs': JOBS,
        'child_seconds': CHILD_SECONDS,
        'startup_share': STARTUP_SHARE,
    }
    tmp = TRUTH + '.tmp'
    with open(tmp, 'w') as f:
        json.dump(data, f)
    os.rename(tmp, TRUTH)
    run_jobs()


if __name__ == '__main__':
    main()
