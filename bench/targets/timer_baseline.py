# -*- coding: utf-8 -*-
"""Platform baseline for the max-rate benchmark (Python 3.3+).

usage: python3 timer_baseline.py RATE SECONDS [TIMER_SLACK_NS]

A bare loop that does nothing but sleep until absolute deadlines on the
same grid (and with the same "late" rule) as the native sampler:
clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME) to start + k * interval; a
wake-up more than half an interval after its deadline is late; slots missed
entirely are skipped and counted late. It shows how precisely this machine
can wake a sleeping thread at all (timer slack, virtualization), i.e. the
ceiling for any sampler that sleeps between samples. With TIMER_SLACK_NS the
loop first sets its timer slack (prctl PR_SET_TIMERSLACK; Linux default is
50000 ns). Also reports the loop's CPU time per wake-up (time.thread_time;
what sleeping and waking alone costs here, plus a few µs of Python).
Prints one JSON line.
"""
import ctypes
import json
import sys
import time

RATE = float(sys.argv[1])
SECONDS = float(sys.argv[2])
SLACK = int(sys.argv[3]) if len(sys.argv) > 3 else None

CLOCK_MONOTONIC = 1
TIMER_ABSTIME = 1
PR_SET_TIMERSLACK = 29


class Timespec(ctypes.Structure):
    _fields_ = [('tv_sec', ctypes.c_long), ('tv_nsec', ctypes.c_long)]


def main():
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, 9, 0, 0, 0)  # PR_SET_PDEATHSIG, SIGKILL
    if SLACK is not None:
        libc.prctl(PR_SET_TIMERSLACK, ctypes.c_ulong(SLACK), 0, 0, 0)
    nanosleep = libc.clock_nanosleep
    ts = Timespec()
    ref = ctypes.byref(ts)
    now_ns = time.monotonic_ns
    interval = int(1e9 / RATE)
    start = now_ns() + 10 * interval
    end = start + int(SECONDS * 1e9)
    k = 0
    cpu0 = time.thread_time()
    ticks = late = 0
    lat_sum = 0
    lats = []
    while True:
        deadline = start + k * interval
        if deadline >= end:
            break
        ts.tv_sec, ts.tv_nsec = divmod(deadline, 1000000000)
        while nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, ref, None) == 4:  # EINTR
            pass
        lat = now_ns() - deadline
        ticks += 1
        lat_sum += lat
        lats.append(lat)
        if lat > interval // 2:
            late += 1
        k += 1
        due = (now_ns() - start) // interval
        if due > k:
            late += due - k
            ticks += due - k
            k = due
    cpu_us = (time.thread_time() - cpu0) * 1e6
    lats.sort()
    p = lambda q: lats[min(len(lats) - 1, int(q * len(lats)))] / 1e3 if lats else None
    sys.stdout.write(json.dumps({
        'rate': RATE, 'slackNs': SLACK, 'ticks': ticks, 'late': late,
        'lateFraction': float(late) / ticks if ticks else None,
        'cpuPerWakeUs': cpu_us / len(lats) if lats else None,
        'meanUs': lat_sum / 1e3 / len(lats) if lats else None, 'p50Us': p(0.5), 'p99Us': p(0.99), 'maxUs': p(1.0),
    }) + '\n')


if __name__ == '__main__':
    main()
