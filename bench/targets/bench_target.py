# -*- coding: utf-8 -*-
"""Benchmark target for bench/run.ts. Runs unchanged on Python 2.7 and 3.6+.

usage: python bench_target.py park|busy DEPTH [LIFETIME_SECONDS [detach]]

park  the main thread recurses DEPTH frames deep and sleeps there; prints
      "READY <depth> <pid>" once it is about to block.
busy  the main thread (the only thread) recurses DEPTH frames deep and runs a
      fixed unit of pure-Python work there forever. About every 50 ms it
      prints "RATE <seconds> <units> <cpu seconds>" (a monotonic clock, the
      cumulative number of units done and the process CPU time), so the
      runner can compute the work rate over any window from the target's own
      clocks, unaffected by pipe delays: per second of wall time (what a user
      sees) and per CPU second (insensitive to waiting for a core or being
      paused, sensitive to cache and memory interference).

With "detach" the process forks and the parent exits at once, so the
target is not a child of the runner: a ptrace stop of a child is also
reported to its parent's wait(), and the runner's event loop (libuv's
SIGCHLD handler) would swallow the stops the --blocking sampler waits for.
The READY line carries the pid to profile: "READY <depth> <pid>".

Either way the process ends after LIFETIME seconds (default 900); attached
it dies with its parent (PR_SET_PDEATHSIG), detached it dies at its next
report once the runner's end of stdout is closed (EPIPE).
"""
import os
import sys
import threading
import time

MODE = sys.argv[1]
DEPTH = int(sys.argv[2])
LIFETIME = float(sys.argv[3]) if len(sys.argv) > 3 else 900.0
DETACH = len(sys.argv) > 4 and sys.argv[4] == 'detach'
REPORT_EVERY = 0.05
UNIT = 1000  # loop iterations per unit of work (tens of microseconds)

clock = getattr(time, 'monotonic', None) or time.time
cpu_clock = getattr(time, 'process_time', None) or time.clock  # 2.7: time.clock() is CPU time
sys.setrecursionlimit(max(1000, DEPTH + 200))


def die_with_parent():
    try:
        import ctypes
        ctypes.CDLL(None).prctl(1, 9, 0, 0, 0)  # PR_SET_PDEATHSIG, SIGKILL
    except Exception:
        pass


def watchdog():
    # A timer thread would add a second (sleeping) thread; use SIGALRM instead.
    import signal

    def expire(signum, frame):
        os._exit(3)
    signal.signal(signal.SIGALRM, expire)
    signal.alarm(int(LIFETIME))


def say(line):
    sys.stdout.write(line + '\n')
    sys.stdout.flush()


def park():
    say('READY %d %d' % (len(stack()), os.getpid()))
    while True:
        time.sleep(100000)


def busy():
    out = sys.stdout
    now = clock
    cpu = cpu_clock
    units = 0
    x = 0
    say('READY %d %d' % (len(stack()), os.getpid()))
    last = now()
    while True:
        for _ in range(UNIT):
            x = (x * 31 + 7) % 1000003
        units += 1
        t = now()
        if t - last >= REPORT_EVERY:
            last = t
            out.write('RATE %.6f %d %.6f\n' % (t, units, cpu()))
            out.flush()


def stack():
    frames = []
    f = sys._getframe(1)
    while f is not None:
        frames.append(f)
        f = f.f_back
    return frames


def descend(n, leaf):
    # Depth counts every Python frame of the thread, <module> included.
    if n <= 1:
        return leaf()
    return descend(n - 1, leaf)


def main():
    if DETACH:
        if os.fork() != 0:
            os._exit(0)
    else:
        die_with_parent()
    watchdog()
    leaf = park if MODE == 'park' else busy
    # <module> + main + (DEPTH - 3) descend frames + leaf = DEPTH frames.
    descend(DEPTH - 3, leaf)


if __name__ == '__main__':
    main()
