"""A small Python service under load, for `npm run demo`.

It re-creates the two stories Periscope was built for, so the flame graph has
something true to say: request handlers that spend their time re-parsing JSON
because an lru_cache is too small for the working set (the Rasa chatbot), and
a "configure mappers" step that runs again for every job (the RQ workers).
No dependencies beyond the standard library.
"""
import functools
import json
import random
import sys
import threading
import time

DOCUMENTS = [json.dumps({"intent": "greet_%d" % i, "entities": list(range(200)), "text": "x" * 400}) for i in range(64)]


@functools.lru_cache(maxsize=8)  # too small for 64 documents: most calls miss
def parse_document(index):
    return json.loads(DOCUMENTS[index])


def classify(message):
    doc = parse_document(random.randrange(len(DOCUMENTS)))
    return sum(doc["entities"][:20]) + len(message)


def handle_request(message):
    score = 0
    for _ in range(5):
        score += classify(message)
    return score


def configure_mappers():
    # Rebuilt for every job instead of once per worker.
    registry = {}
    for i in range(3000):
        registry["Model%d" % i] = {"columns": ["c%d" % j for j in range(8)]}
    return registry


def run_job(job_id):
    configure_mappers()
    total = 0
    for i in range(2000):
        total += i * job_id
    return total


def web_worker():
    while True:
        handle_request("hello there")
        time.sleep(0.0005)


def job_worker():
    job_id = 0
    while True:
        job_id += 1
        run_job(job_id)
        time.sleep(0.002)


def main():
    threading.Thread(target=web_worker, name="web-worker", daemon=True).start()
    threading.Thread(target=job_worker, name="job-worker", daemon=True).start()
    sys.stdout.write("sample service running\n")
    sys.stdout.flush()
    while True:
        time.sleep(1)


if __name__ == "__main__":
    main()
