"""Reads one DynamoDB partition of N items page by page (1 MB pages, as the load's flush reads
the writes it staged), in moto's backend in-process, with or without devstack/moto_speedups.py.

Usage: .venv/bin/python devstack/bench_partition_pages.py fast|plain N
Prints `partition pages: <mode> <N> items, <pages> pages in <seconds> s`.
"""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import moto_speedups  # noqa: E402
from moto.dynamodb.models import dynamodb_backends  # noqa: E402


def main():
    mode, n = sys.argv[1], int(sys.argv[2])
    if mode == "fast":
        moto_speedups.apply()
    backend = dynamodb_backends["123456789012"]["us-east-1"]
    keys = [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}]
    attrs = [{"AttributeName": a, "AttributeType": "S"} for a in ("pk", "sk")]
    backend.create_table("t", schema=keys, attr=attrs, throughput=None, billing_mode="PAY_PER_REQUEST",
                         indexes=[], global_indexes=[], streams=None, sse_specification=None, tags=[],
                         deletion_protection_enabled=False, warm_throughput=None)
    for i in range(n):
        item = {"pk": {"S": "LOAD#x"}, "sk": {"S": f"W#job#GS#{i * 7919 % n:08}#e"}, "write": {"S": "y" * 900}}
        backend.put_item("t", item)
    start, pages, began = None, 0, time.time()
    while True:
        _, _, start = backend.query("t", {"S": "LOAD#x"}, None, [], None, start, True, None)
        pages += 1
        if not start:
            break
    print(f"partition pages: {mode} {n} items, {pages} pages in {time.time() - began:.1f} s")


if __name__ == "__main__":
    main()
