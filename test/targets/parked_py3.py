# -*- coding: utf-8 -*-
"""Python 3-only chains for parked.py (yield from, coroutines, async
generators, asyncio, non-ASCII identifiers). Imported only on Python 3."""
import asyncio
import sys
import time

from _truth import walk

import 中文模块

FOREVER = 100000


# yield from: the reader sees the delegating generator below the inner one.
def inner_generator(rec):
    yield 0
    rec['frames'] = walk(sys._getframe()); time.sleep(FOREVER)
    yield 1


def outer_generator(rec):
    yield from inner_generator(rec)


def drive_yield_from(rec):
    for value in outer_generator(rec):
        pass


# A coroutine driven by hand: suspended once, then resumed into its park.
class Suspend(object):
    def __await__(self):
        yield


async def coro_inner(rec):
    await Suspend()
    rec['frames'] = walk(sys._getframe()); time.sleep(FOREVER)


async def coro_outer(rec):
    await coro_inner(rec)


def drive_coroutine(rec):
    coro = coro_outer(rec)
    coro.send(None)
    coro.send(None)


# An async generator iterated with `async for` inside a coroutine.
async def parked_async_generator(rec):
    yield 0
    rec['frames'] = walk(sys._getframe()); time.sleep(FOREVER)
    yield 1


async def consume_async_generator(rec):
    async for value in parked_async_generator(rec):
        pass


def drive_async_generator(rec):
    consume_async_generator(rec).send(None)


# A real asyncio event loop, its task blocked (synchronously) inside a coroutine.
async def asyncio_leaf(rec):
    rec['frames'] = walk(sys._getframe()); time.sleep(FOREVER)


async def asyncio_main(rec):
    await asyncio.sleep(0)
    await asyncio_leaf(rec)


def drive_asyncio(rec):
    loop = asyncio.new_event_loop()
    loop.run_until_complete(asyncio_main(rec))


def chains(forever):
    return [
        ('yield-from', 'yield_from', drive_yield_from, ()),
        ('coroutine', 'coroutine', drive_coroutine, ()),
        ('async-generator', 'async_generator', drive_async_generator, ()),
        ('asyncio', 'asyncio', drive_asyncio, ()),
        ('中文线程', 'unicode', 中文模块.计算, ()),
    ]
