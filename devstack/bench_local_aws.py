"""Side-by-side latency of the local AWS servers the stack can run: moto 5.2.5 as released and
moto with devstack/moto_speedups.py, one after the other in one run.

For each server and backlog size: median of 5 calls, in ms, of SQS SendMessageBatch (10 messages),
ReceiveMessage (max 10, no wait) and DeleteMessageBatch (those 10), and DynamoDB PutItem
(conditional, as a dedup claim), UpdateItem (SET with if_not_exists, as a ledger update), Query
on a GSI and Query of one small partition of the table, with that many messages queued or items
stored. Prints `bench:` lines and a table.

Usage: .venv/bin/python devstack/bench_local_aws.py [--sizes 10,1000,10000] [--plain-max 1000]
"""

import argparse
import os
import socket
import statistics
import subprocess
import sys
import time
import urllib.request

import boto3

HERE = os.path.dirname(os.path.abspath(__file__))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(plain):
    port = free_port()
    env = dict(os.environ, DEVSTACK_PLAIN_MOTO="1" if plain else "0")
    proc = subprocess.Popen(
        [sys.executable, os.path.join(HERE, "moto_server.py"), "-H", "127.0.0.1", "-p", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            urllib.request.urlopen(url + "/moto-api/", timeout=1)
            return proc, url
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("moto did not start")


def clients(url):
    kw = dict(endpoint_url=url, region_name="us-east-1", aws_access_key_id="t", aws_secret_access_key="t")
    return boto3.client("sqs", **kw), boto3.client("dynamodb", **kw)


def median_ms(fn, times=5):
    samples = []
    for _ in range(times):
        t = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t) * 1000)
    return statistics.median(samples)


def sqs_figures(sqs, n):
    url = sqs.create_queue(QueueName=f"bench-{n}-{time.time_ns()}")["QueueUrl"]
    batch = [{"Id": str(i), "MessageBody": "x" * 300} for i in range(10)]
    for _ in range(n // 10):
        sqs.send_message_batch(QueueUrl=url, Entries=batch)
    send = median_ms(lambda: sqs.send_message_batch(QueueUrl=url, Entries=batch))
    handles = []

    def receive():
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
        handles.append([m["ReceiptHandle"] for m in got.get("Messages", [])])

    receive_ms = median_ms(receive)

    def delete():
        hs = handles.pop()
        entries = [{"Id": str(i), "ReceiptHandle": h} for i, h in enumerate(hs)]
        sqs.delete_message_batch(QueueUrl=url, Entries=entries)

    delete_ms = median_ms(delete)
    return send, receive_ms, delete_ms


def dynamo_figures(ddb, n):
    table = f"bench-{n}-{time.time_ns()}"
    ddb.create_table(
        TableName=table,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
            {"AttributeName": "error_job", "AttributeType": "S"},
        ],
        GlobalSecondaryIndexes=[
            {
                "IndexName": "error-index",
                "KeySchema": [{"AttributeName": "error_job", "KeyType": "HASH"}],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    for start in range(0, n, 25):
        items = [
            {"PutRequest": {"Item": {"pk": {"S": "LEDGER#job"}, "sk": {"S": f"G{i}"}, "version": {"N": "1"}}}}
            for i in range(start, min(n, start + 25))
        ]
        ddb.batch_write_item(RequestItems={table: items})
    seq = iter(range(10**9))

    def put():
        ddb.put_item(
            TableName=table,
            Item={"pk": {"S": f"EVENT#{next(seq)}"}, "sk": {"S": "EVENT"}},
            ConditionExpression="attribute_not_exists(pk)",
        )

    def update():
        ddb.update_item(
            TableName=table,
            Key={"pk": {"S": "LEDGER#job"}, "sk": {"S": f"G{next(seq) % max(n, 1)}"}},
            UpdateExpression="SET version = if_not_exists(version, :z) + :o, error_job = :j",
            ExpressionAttributeValues={":z": {"N": "0"}, ":o": {"N": "1"}, ":j": {"S": "job"}},
        )

    def query():
        ddb.query(
            TableName=table,
            IndexName="error-index",
            KeyConditionExpression="error_job = :j",
            ExpressionAttributeValues={":j": {"S": "job"}},
            Limit=10,
        )

    def query_partition():
        ddb.query(
            TableName=table,
            KeyConditionExpression="pk = :p",
            ExpressionAttributeValues={":p": {"S": "EVENT#0"}},
        )

    return median_ms(put), median_ms(update), median_ms(query), median_ms(query_partition)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="10,1000,10000")
    parser.add_argument("--plain-max", type=int, default=1000, help="largest backlog for plain moto (it slows with it)")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    rows = []
    for name, plain in (("moto", True), ("moto+speedups", False)):
        proc, url = start(plain)
        try:
            sqs, ddb = clients(url)
            for n in sizes:
                if plain and n > args.plain_max:
                    rows.append((name, n, None, None))
                    continue
                rows.append((name, n, sqs_figures(sqs, n), dynamo_figures(ddb, n)))
        finally:
            proc.kill()
    print("| server | backlog | SendMessageBatch | ReceiveMessage | DeleteMessageBatch | PutItem | UpdateItem | Query GSI | Query partition |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, n, s, d in rows:
        if s is None:
            print(f"| {name} | {n} | not run (> --plain-max) | | | | | | |")
            continue
        print(f"| {name} | {n} | " + " | ".join(f"{v:.1f} ms" for v in (*s, *d)) + " |")
    for name, n, s, d in rows:
        if s is None:
            continue
        key = name.replace("+", "_").replace("-", "_")
        for label, v in zip(("sqs_send_batch", "sqs_receive", "sqs_delete_batch", "ddb_put", "ddb_update", "ddb_query_gsi", "ddb_query_partition"), (*s, *d)):
            print(f"bench: {key}_{label}_at_{n} = {v:.1f} ms")


if __name__ == "__main__":
    main()
