# -*- coding: utf-8 -*-
"""Non-ASCII module name, file name, class and function names (Python 3 only)."""
import sys
import time

from _truth import walk

永远 = 100000


class 计算器(object):
    def 运行(self, rec):
        rec['frames'] = walk(sys._getframe()); time.sleep(永远)


def 计算(rec):
    return 计算器().运行(rec)
