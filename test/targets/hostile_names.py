# -*- coding: utf-8 -*-
"""Record-test target whose function, file and thread names are markup.

usage: python hostile_names.py TRUTH_JSON [LIFETIME_SECONDS] [EXTRA_ARGS...]

A busy function is compiled from source under the filename
'"><script>alert(1)</script>.py' and its code object is then renamed to
'<img src=x onerror=alert(1)>' (co_name, and co_qualname on 3.11+), so a
sampler reading the code object sees exactly those strings. It spins in a
thread named '</title><script>alert(3)</script>&amp;'. EXTRA_ARGS (e.g. a
hostile string) only end up in the command line. TRUTH_JSON (atomic) holds
the names as the interpreter itself sees them.

Runs on 2.7 and 3.6+.
"""
import json
import os
import sys
import threading
import time
import types

from _truth import die_with_parent, text

TRUTH = sys.argv[1]
LIFETIME = float(sys.argv[2]) if len(sys.argv) > 2 else 120.0

HOSTILE_NAME = '<img src=x onerror=alert(1)>'
HOSTILE_FILE = '"><script>alert(1)</script>.py'
HOSTILE_THREAD = '</title><script>alert(3)</script>&amp;'

SOURCE = '''
def spin():
    x = 0
    while True:
        x = (x * 31 + 7) % 1000003
'''


def renamed(code, name):
    if hasattr(code, 'replace'):  # 3.8+
        if hasattr(code, 'co_qualname'):  # 3.11+
            return code.replace(co_name=name, co_qualname=name)
        return code.replace(co_name=name)
    if sys.version_info[0] >= 3:  # 3.6, 3.7
        return types.CodeType(
            code.co_argcount, code.co_kwonlyargcount, code.co_nlocals, code.co_stacksize, code.co_flags,
            code.co_code, code.co_consts, code.co_names, code.co_varnames, code.co_filename, name,
            code.co_firstlineno, code.co_lnotab, code.co_freevars, code.co_cellvars)
    return types.CodeType(  # 2.7
        code.co_argcount, code.co_nlocals, code.co_stacksize, code.co_flags,
        code.co_code, code.co_consts, code.co_names, code.co_varnames, code.co_filename, name,
        code.co_firstlineno, code.co_lnotab, code.co_freevars, code.co_cellvars)


def main():
    die_with_parent()
    namespace = {}
    exec(compile(SOURCE, HOSTILE_FILE, 'exec'), namespace)
    fn = namespace['spin']
    fn.__code__ = renamed(fn.__code__, HOSTILE_NAME)
    code = fn.__code__
    t = threading.Thread(target=fn, name=HOSTILE_THREAD)
    t.daemon = True
    t.start()
    data = {
        'pid': os.getpid(),
        'version': '%d.%d.%d' % tuple(sys.version_info[:3]),
        'name': text(getattr(code, 'co_qualname', code.co_name)),
        'filename': text(code.co_filename),
        'thread': text(t.name),
    }
    tmp = TRUTH + '.tmp'
    with open(tmp, 'w') as f:
        json.dump(data, f)
    os.rename(tmp, TRUTH)
    time.sleep(LIFETIME)


if __name__ == '__main__':
    main()
