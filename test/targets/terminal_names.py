# -*- coding: utf-8 -*-
"""Terminal-escape test target: names full of control characters.

usage: python terminal_names.py TRUTH_JSON [LIFETIME_SECONDS]

A busy function whose code object is renamed (co_name and co_qualname) to a
string carrying a clear-screen sequence, a window-title sequence, a C1 CSI
and a right-to-left override, compiled under a file name with an escape
sequence in it, spinning in a thread whose name holds more of the same. A
profiler that prints these raw lets the target drive the viewer's terminal.
Needs 3.8+ (code.replace).
"""
import os
import sys
import threading
import time

from _truth import die_with_parent, write_json_atomic

TRUTH = sys.argv[1]
LIFETIME = float(sys.argv[2]) if len(sys.argv) > 2 else 120.0

NAME = u'evil\x1b[2J\x1b]0;pwned\x07name\u202egnp.exe'
FILE = u'file\x1b[31m.py'
THREAD = u'thread\x9b31m\u2066x'

SOURCE = '''
def spin():
    x = 0
    while True:
        x = (x * 31 + 7) % 1000003
'''


def main():
    die_with_parent()
    namespace = {}
    exec(compile(SOURCE, FILE, 'exec'), namespace)
    spin = namespace['spin']
    code = spin.__code__
    changes = {'co_name': NAME}
    if hasattr(code, 'co_qualname'):
        changes['co_qualname'] = NAME
    spin.__code__ = code.replace(**changes)
    t = threading.Thread(target=spin, name=THREAD)
    t.daemon = True
    t.start()
    write_json_atomic(TRUTH, {'pid': os.getpid()})
    os.rename(TRUTH + '.tmp', TRUTH)
    time.sleep(LIFETIME)


if __name__ == '__main__':
    main()
