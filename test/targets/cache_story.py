# -*- coding: utf-8 -*-
"""Comparison target, after the chatbot story: a loop answers requests whose
payloads are decoded by json.loads under functools.lru_cache(maxsize=MAXSIZE).
Requests cycle through 64 distinct payloads, so with a cache smaller than that
every request decodes again (CPU in json's decoder); with a cache large enough
the decoder runs 64 times and the time goes to respond().

usage: python cache_story.py TRUTH_JSON MAXSIZE [LIFETIME_SECONDS]

Writes TRUTH_JSON once the loop runs; exits after LIFETIME_SECONDS (default
120). Python 3 only (functools.lru_cache).
"""
import functools
import json
import os
import sys
import time

from _truth import write_json_atomic, interpreter_info, die_with_parent

TRUTH = sys.argv[1]
MAXSIZE = int(sys.argv[2])
LIFETIME = float(sys.argv[3]) if len(sys.argv) > 3 else 120.0
KEYS = 64
PAYLOADS = [json.dumps({'id': k, 'items': [{'n': i, 'text': 'item %d of %d' % (i, k)} for i in range(300)]}) for k in range(KEYS)]


@functools.lru_cache(maxsize=MAXSIZE)
def decode(key):
    return json.loads(PAYLOADS[key])


def respond(doc):
    end = time.perf_counter() + 0.00005
    x = len(doc['items'])
    while time.perf_counter() < end:
        x = (x * 31 + 7) % 1000003
    return x


def handle(key):
    return respond(decode(key))


def main():
    die_with_parent()
    start = time.time()
    for key in range(KEYS):
        handle(key)
    data = interpreter_info()
    data['maxsize'] = MAXSIZE
    write_json_atomic(TRUTH, data)
    os.rename(TRUTH + '.tmp', TRUTH)
    key = 0
    while time.time() < start + LIFETIME:
        handle(key)
        key = (key + 1) % KEYS


if __name__ == '__main__':
    main()
