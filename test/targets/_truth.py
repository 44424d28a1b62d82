# -*- coding: utf-8 -*-
# Shared helpers for the dump test targets. Must run unchanged on Python 2.7
# and 3.6+: no f-strings, no walrus, no py3-only syntax.
#
# Ground truth is taken from inside the target with sys._getframe() and the
# f_back chain, which is exactly the chain an out-of-process reader walks.
import json
import os
import sys
import threading
import time

PY3 = sys.version_info[0] >= 3

# Syscalls a thread parked in time.sleep() blocks in (x86_64 numbers):
# poll, select, nanosleep, clock_nanosleep, pselect6, ppoll. A thread waiting
# for the GIL blocks in futex (202) instead; a running thread reads "running".
SLEEP_SYSCALLS = set([7, 23, 35, 230, 270, 271])


def code_name(code):
    """co_qualname on 3.11+, else co_name (what `periscope dump` reports)."""
    return getattr(code, 'co_qualname', None) or code.co_name


def text(value):
    """A str on every version (2.7 keeps byte strings, which are UTF-8 here)."""
    if not PY3 and isinstance(value, bytes):
        return value.decode('utf-8')
    return value


def walk(frame):
    """Frames innermost first, from `frame` outwards along f_back."""
    out = []
    while frame is not None:
        code = frame.f_code
        out.append({
            'name': text(code_name(code)),
            'filename': text(code.co_filename),
            'line': frame.f_lineno,
        })
        frame = frame.f_back
    return out


_libc = None


def _load_libc():
    global _libc
    if _libc is None:
        import ctypes
        _libc = ctypes.CDLL(None, use_errno=True)
    return _libc


def native_id():
    """The OS thread id (gettid) of the calling thread."""
    get = getattr(threading, 'get_native_id', None)
    if get is not None:
        return get()
    # x86_64 SYS_gettid; only reached on 2.7 and 3.6/3.7.
    return _load_libc().syscall(186)


def die_with_parent():
    """Best effort: SIGKILL this process when the process that started it dies,
    so a crashed test runner never leaves targets behind."""
    try:
        _load_libc().prctl(1, 9, 0, 0, 0)  # PR_SET_PDEATHSIG, SIGKILL
    except Exception:
        pass


def thread_record(name, kind, busy=False):
    """The ground-truth record for the calling thread (frames come later)."""
    return {
        'name': text(name),
        'kind': kind,
        'ident': threading.current_thread().ident,
        'native_id': native_id(),
        'busy': busy,
    }


def blocked_in_sleep(tid):
    """True when OS thread `tid` of this process sits in a sleep syscall."""
    try:
        with open('/proc/self/task/%d/syscall' % tid) as f:
            first = f.read().split(' ', 1)[0].strip()
    except (IOError, OSError):
        return None  # unknown: caller falls back to a grace period
    try:
        return int(first) in SLEEP_SYSCALLS
    except ValueError:
        return False  # "running"


def wait_parked(records, timeout=60.0):
    """Wait until every non-busy record has its frames and its thread is
    blocked in the sleep call that follows the snapshot (so nothing of ours
    runs on those threads any more)."""
    deadline = time.time() + timeout
    unknown = False
    while True:
        pending = []
        for rec in records:
            if 'frames' not in rec:
                pending.append(rec['kind'])
                continue
            if rec['busy']:
                continue
            state = blocked_in_sleep(rec['native_id'])
            if state is None:
                unknown = True
            elif not state:
                pending.append(rec['kind'])
        if not pending:
            break
        if time.time() > deadline:
            raise RuntimeError('threads never parked: %r' % (pending,))
        time.sleep(0.005)
    if unknown:
        time.sleep(0.3)


def write_json_atomic(path, data):
    """Write JSON to path.tmp, then rename it over path (readers never see a
    partial file)."""
    tmp = path + '.tmp'
    with open(tmp, 'w') as f:
        json.dump(data, f, indent=1, sort_keys=True)
        f.flush()
        os.fsync(f.fileno())


def interpreter_info():
    return {
        'pid': os.getpid(),
        'version': '%d.%d.%d' % tuple(sys.version_info[:3]),
        'hexversion': sys.hexversion,
        'executable': text(sys.executable),
    }
