"""Checks that devstack/moto_speedups.py changes no answer: DynamoDB reads of items holding every
attribute type, and the backend lookup of each service the stack uses, give the same answers
from moto as released and from moto with the speedups (both served by devstack/moto_server.py).
And that the patched SQS delete stays right under concurrent requests: deletes on many threads,
with sends meanwhile, remove exactly the messages deleted (the threads switched as often as
Python allows, so that a race shows).

Usage: .venv/bin/python devstack/test_moto_speedups.py   (run by `make test`; exits 1 on a difference)
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from bench_local_aws import clients, start  # noqa: E402

ITEM = {
    "pk": {"S": "k1"},
    "s": {"S": "text é"},
    "n": {"N": "12.5"},
    "b": {"B": b"\x00\x01binary"},
    "t": {"BOOL": True},
    "f": {"BOOL": False},
    "z": {"NULL": True},
    "ss": {"SS": ["a", "b"]},
    "ns": {"NS": ["1", "2"]},
    "bs": {"BS": [b"x", b"y"]},
    "m": {"M": {"inner": {"S": "v"}, "deep": {"M": {"n": {"N": "3"}, "b": {"B": b"z"}}}}},
    "l": {"L": [{"S": "a"}, {"N": "1"}, {"M": {"k": {"S": "v"}}}, {"L": [{"NULL": True}]}]},
    "e": {"S": ""},
}
PLAIN = {"pk": {"S": "k2"}, "s": {"S": "plain"}, "n": {"N": "1"}, "m": {"M": {"a": {"L": [{"S": "x"}]}}}}


def answers(url):
    """What moto at `url` answers to the reads the stack makes, without request metadata."""
    sqs, ddb = clients(url)
    ddb.create_table(
        TableName="t",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    ddb.put_item(TableName="t", Item=ITEM)
    ddb.put_item(TableName="t", Item=PLAIN)
    got = {
        "get": ddb.get_item(TableName="t", Key={"pk": {"S": "k1"}}, ConsistentRead=True),
        "batch_get": ddb.batch_get_item(RequestItems={"t": {"Keys": [{"pk": {"S": "k1"}}, {"pk": {"S": "k2"}}]}}),
        "query": ddb.query(
            TableName="t",
            KeyConditionExpression="pk = :k",
            ExpressionAttributeValues={":k": {"S": "k2"}},
        ),
        "scan": ddb.scan(TableName="t"),
        "update": ddb.update_item(
            TableName="t",
            Key={"pk": {"S": "k2"}},
            UpdateExpression="SET s = :s",
            ExpressionAttributeValues={":s": {"S": "new"}},
            ReturnValues="ALL_NEW",
        ),
        "queue": sqs.create_queue(QueueName="q")["QueueUrl"].rsplit("/", 1)[1],
    }
    got.update(queries(ddb))
    got.update(big_partitions(ddb))
    # Conditions, each sent twice (the second meets the kept tokens): met, not met, malformed,
    # and a reserved word used as a name.
    conditions = [
        ("attribute_not_exists(pk) OR (#s = :s AND n < :n)", {"#s": "s"}, {":s": {"S": "plain"}, ":n": {"N": "5"}}),
        ("attribute_exists(pk) AND #s = :s", {"#s": "s"}, {":s": {"S": "new"}}),
        ("attribute_exists(pk) AND ((n = :n", None, {":n": {"N": "1"}}),
        ("attribute_exists(pk) AND name = :n", None, {":n": {"N": "1"}}),
    ]
    for i, (expr, names, values) in enumerate(conditions):
        for attempt in range(2):
            kw = dict(TableName="t", Item={"pk": {"S": "k2"}, "s": {"S": "plain"}, "n": {"N": "1"}},
                      ConditionExpression=expr, ExpressionAttributeValues=values)
            if names:
                kw["ExpressionAttributeNames"] = names
            try:
                ddb.put_item(**kw)
                got[f"condition {i} #{attempt}"] = "written"
            except ddb.exceptions.ClientError as e:
                got[f"condition {i} #{attempt}"] = (e.response["Error"]["Code"], e.response["Error"]["Message"])
    got.update(updates(ddb))
    for answer in got.values():
        if isinstance(answer, dict):
            answer.pop("ResponseMetadata", None)
    if "Items" in got["scan"]:
        got["scan"]["Items"].sort(key=lambda i: i["pk"]["S"])
    for items in got["batch_get"]["Responses"].values():
        items.sort(key=lambda i: i["pk"]["S"])
    return got


def updates(ddb):
    """One update expression sent many times with other values (alone and in transactions, as
    the ledger writes are), and malformed ones twice: the parse kept of a text must not carry
    one request's values into the next."""
    got = {}
    expr = "SET #s = :s, n = if_not_exists(n, :zero) + :one, l = list_append(if_not_exists(l, :empty), :l) REMOVE z"
    for i in range(3):
        values = {":s": {"S": f"v{i}"}, ":zero": {"N": "0"}, ":one": {"N": str(i + 1)},
                  ":empty": {"L": []}, ":l": {"L": [{"S": f"x{i}"}]}}
        key = {"pk": {"S": f"u{i % 2}"}}
        got[f"update {i}"] = ddb.update_item(TableName="t", Key=key, UpdateExpression=expr,
                                             ExpressionAttributeNames={"#s": "s"},
                                             ExpressionAttributeValues=values, ReturnValues="ALL_NEW")
        ddb.transact_write_items(TransactItems=[
            {"Update": {"TableName": "t", "Key": {"pk": {"S": f"t{j}"}}, "UpdateExpression": expr,
                        "ExpressionAttributeNames": {"#s": "s"}, "ExpressionAttributeValues": values}}
            for j in range(i + 1)
        ])
    for j in range(3):
        got[f"transacted {j}"] = ddb.get_item(TableName="t", Key={"pk": {"S": f"t{j}"}}, ConsistentRead=True)
    # Paths into maps and lists, arithmetic, sets added and deleted: the parse tree each copied
    # before the validator changes it.
    ddb.put_item(TableName="t", Item={"pk": {"S": "deep"}, "m": {"M": {"a": {"L": [{"N": "1"}]}}},
                                      "ss": {"SS": ["a", "b"]}, "c": {"N": "10"}})
    deep = "SET m.#a[0] = :one, m.b = :s, c = c - :one ADD ns :ns DELETE ss :gone"
    for i in range(2):
        got[f"deep {i}"] = ddb.update_item(
            TableName="t", Key={"pk": {"S": "deep"}}, UpdateExpression=deep,
            ExpressionAttributeNames={"#a": "a"},
            ExpressionAttributeValues={":one": {"N": str(i + 1)}, ":s": {"S": f"s{i}"},
                                       ":ns": {"NS": [str(i)]}, ":gone": {"SS": ["a"]}},
            ReturnValues="ALL_NEW")
    # Well-formed but refused by a check of the validator: each check's refusal the same.
    refused = ["SET pk = :s", "SET c = c + :s", "SET nothere.x = :s", "SET m.a = list_append(:s, :s)",
               "SET q = if_not_exists(c, :s) - :s", "SET #n = :s"]
    for i, text in enumerate(refused * 2):
        try:
            names = {"ExpressionAttributeNames": {"#n": "n"}} if "#n" in text else {}
            ddb.update_item(TableName="t", Key={"pk": {"S": "deep"}}, UpdateExpression=text,
                            ExpressionAttributeValues={":s": {"S": "text"}}, **names)
            got[f"refused {i}"] = "written"
        except ddb.exceptions.ClientError as e:
            got[f"refused {i}"] = (e.response["Error"]["Code"], e.response["Error"]["Message"])
    for i, bad in enumerate(["SET s = :s,", "SET s = :s REMOVE", "ADD"] * 2):
        try:
            ddb.update_item(TableName="t", Key={"pk": {"S": "u0"}}, UpdateExpression=bad,
                            ExpressionAttributeValues={":s": {"S": "bad"}})
            got[f"malformed {i}"] = "written"
        except ddb.exceptions.ClientError as e:
            got[f"malformed {i}"] = (e.response["Error"]["Code"], e.response["Error"]["Message"])
    return got


def queries(ddb):
    """Queries of a table with a sort key and an index, over several partitions: whole, by a range
    condition, backwards, and page by page (each page's start key is the last page's end)."""
    ddb.create_table(
        TableName="r",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[
            {"AttributeName": a, "AttributeType": "S"} for a in ("pk", "sk", "g", "gs")
        ],
        GlobalSecondaryIndexes=[{
            "IndexName": "g-index",
            "KeySchema": [{"AttributeName": "g", "KeyType": "HASH"}, {"AttributeName": "gs", "KeyType": "RANGE"}],
            "Projection": {"ProjectionType": "ALL"},
        }],
        BillingMode="PAY_PER_REQUEST",
    )
    for p in range(6):
        for k in (7, 3, 11, 0, 5):
            item = {"pk": {"S": f"p{p}"}, "sk": {"S": f"s{k:02}"}, "v": {"N": str(p * k)}}
            if k != 5:  # items without the index's keys are not in the index
                item["g"] = {"S": f"g{(p + k) % 3}"}
                item["gs"] = {"S": f"t{k % 2}"}
            ddb.put_item(TableName="r", Item=item)

    def pages(**kw):
        out, start = [], None
        while True:
            page = ddb.query(TableName="r", Limit=2, **kw, **({"ExclusiveStartKey": start} if start else {}))
            page.pop("ResponseMetadata", None)
            out.append(page)
            start = page.get("LastEvaluatedKey")
            if not start:
                return out

    one = {":p": {"S": "p2"}}
    return {
        "query partition": ddb.query(TableName="r", KeyConditionExpression="pk = :p", ExpressionAttributeValues=one),
        "query missing partition": ddb.query(
            TableName="r", KeyConditionExpression="pk = :p", ExpressionAttributeValues={":p": {"S": "none"}}
        ),
        "query range": ddb.query(
            TableName="r",
            KeyConditionExpression="pk = :p AND sk BETWEEN :a AND :b",
            ExpressionAttributeValues={**one, ":a": {"S": "s03"}, ":b": {"S": "s07"}},
        ),
        "query backwards": ddb.query(
            TableName="r", KeyConditionExpression="pk = :p", ExpressionAttributeValues=one, ScanIndexForward=False
        ),
        "query pages": pages(KeyConditionExpression="pk = :p", ExpressionAttributeValues=one),
        "query filtered": ddb.query(
            TableName="r", KeyConditionExpression="pk = :p", ExpressionAttributeValues={**one, ":v": {"N": "10"}},
            FilterExpression="v > :v",
        ),
        "index query": ddb.query(
            TableName="r", IndexName="g-index", KeyConditionExpression="g = :g", ExpressionAttributeValues={":g": {"S": "g1"}}
        ),
        "index query range": ddb.query(
            TableName="r", IndexName="g-index", KeyConditionExpression="g = :g AND gs = :s",
            ExpressionAttributeValues={":g": {"S": "g0"}, ":s": {"S": "t1"}},
        ),
        "index pages": pages(IndexName="g-index", KeyConditionExpression="g = :g", ExpressionAttributeValues={":g": {"S": "g2"}}),
        "scan sorted table": ddb.scan(TableName="r", Limit=7),
    }


def big_partitions(ddb):
    """Queries of partitions large enough that their sort keys are kept in order (string and
    number keys): page by page with and without a limit, pages cut at 1 MB, `begins_with` pages
    whose prefix ends inside a page, backwards and by range, with items put and deleted between
    pages (a page's start key deleted, an item put before and after it)."""
    got = {}
    for kind, key in (("S", lambda i: f"{'S' if i % 3 == 0 else 'W'}#{i:05}"), ("N", lambda i: str(i * 7 - 900))):
        name = f"big{kind}"
        ddb.create_table(
            TableName=name,
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}, {"AttributeName": "sk", "AttributeType": kind}],
            BillingMode="PAY_PER_REQUEST",
        )
        for i in range(700):
            body = "x" * (9000 if i % 5 == 0 else 40)
            ddb.put_item(TableName=name, Item={"pk": {"S": "p"}, "sk": {kind: key(i)}, "v": {"S": body}})
        ddb.put_item(TableName=name, Item={"pk": {"S": "q"}, "sk": {kind: key(1)}})

        def pages(label, limit=None, edit=False, **kw):
            start, n = None, 0
            while True:
                extra = {"ExclusiveStartKey": start} if start else {}
                if limit:
                    extra["Limit"] = limit
                page = ddb.query(TableName=name, **kw, **extra)
                page.pop("ResponseMetadata", None)
                got[f"{name} {label} {n}"] = page
                start, n = page.get("LastEvaluatedKey"), n + 1
                if not start:
                    return
                if edit:
                    ddb.delete_item(TableName=name, Key=start)
                    ddb.put_item(TableName=name, Item={"pk": {"S": "p"}, "sk": {kind: key(n * 97 + 1)}, "v": {"S": "again"}})
                    ddb.put_item(TableName=name, Item={"pk": {"S": "p"}, "sk": {kind: key(9000 + n)}})

        whole = {"KeyConditionExpression": "pk = :p", "ExpressionAttributeValues": {":p": {"S": "p"}}}
        pages("limited", limit=64, **whole)
        pages("by size", **whole)
        pages("edited", limit=90, edit=True, **whole)
        pages("backwards", limit=150, ScanIndexForward=False, **whole)
        pages("filtered", limit=100, FilterExpression="begins_with(v, :x)", **{
            **whole, "ExpressionAttributeValues": {":p": {"S": "p"}, ":x": {"S": "a"}}})
        if kind == "S":
            for prefix in ("S#", "W#", "W#004", "Z"):
                pages(f"prefix {prefix}", limit=70, KeyConditionExpression="pk = :p AND begins_with(sk, :s)",
                      ExpressionAttributeValues={":p": {"S": "p"}, ":s": {"S": prefix}})
        low, high = ("W#00100", "W#00300") if kind == "S" else ("-10", "900")
        pages("between", limit=40, KeyConditionExpression="pk = :p AND sk BETWEEN :a AND :b",
              ExpressionAttributeValues={":p": {"S": "p"}, ":a": {kind: low}, ":b": {kind: high}})
    return got


def kept_order_used():
    """Whether a paged Query of a large partition cut its pages from the kept order (else the
    comparison of answers would not test it), and the order followed a put and a delete."""
    import moto_speedups
    from moto.dynamodb.models import dynamodb_backends

    moto_speedups.apply()
    backend = dynamodb_backends["123456789012"]["us-east-1"]
    schema = [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}]
    attrs = [{"AttributeName": "pk", "AttributeType": "S"}, {"AttributeName": "sk", "AttributeType": "S"}]
    table = backend.create_table("kept", schema=schema, attr=attrs, throughput=None, billing_mode="PAY_PER_REQUEST",
                                 indexes=[], global_indexes=[], streams=None, sse_specification=None, tags=[],
                                 deletion_protection_enabled=False, warm_throughput=None)
    for i in range(300):
        backend.put_item("kept", {"pk": {"S": "p"}, "sk": {"S": f"k{i:03}"}})
    first, _, last = table.query(moto_speedups.dynamodb.DynamoType({"S": "p"}), None, [], 10, None, True, None)
    kept = table.__dict__.get("_devstack_sorted", {}).get(moto_speedups.dynamodb.DynamoType({"S": "p"}))
    if kept is None or len(first) != 10 or last["sk"].cast_value != "k009":
        return f"no kept order used: {len(first)} items, last {last}"
    backend.delete_item("kept", {"pk": {"S": "p"}, "sk": {"S": "k005"}})
    backend.put_item("kept", {"pk": {"S": "p"}, "sk": {"S": "k0055"}})
    if kept[:7] != ["k000", "k001", "k002", "k003", "k004", "k0055", "k006"] or len(kept) != 300:
        return f"the kept order did not follow a delete and a put: {kept[:7]}"
    return None


def concurrent_deletes(threads=8, n=4000, late=500):
    """(deletes refused, deleted messages left behind, messages sent meanwhile kept) when `n`
    received messages are deleted on `threads` threads while `late` more are sent."""
    import threading

    import moto_speedups
    from moto.sqs import models
    from moto.sqs.exceptions import ReceiptHandleIsInvalid

    moto_speedups.apply()
    backend = models.sqs_backends["123456789012"]["us-east-1"]
    name = f"race{len(backend.queues)}"
    backend.create_queue(name)
    for i in range(n):
        backend.send_message(name, f"m{i}")
    handles = []
    while got := backend.receive_message(name, 10, 0, 300):
        handles.extend(m.receipt_handle for m in got)
    queue = backend.get_queue(name)
    refused = []

    def delete(part):
        for h in part:
            try:
                queue.delete_message(h)
            except ReceiptHandleIsInvalid:
                refused.append(h)

    def send():
        for i in range(late):
            backend.send_message(name, f"late{i}")

    workers = [threading.Thread(target=delete, args=(handles[k::threads],)) for k in range(threads)]
    workers.append(threading.Thread(target=send))
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        for w in workers:
            w.start()
        for w in workers:
            w.join()
    finally:
        sys.setswitchinterval(interval)
    left = [m.body for m in queue._messages]
    kept = sum(1 for b in left if b.startswith("late"))
    return len(refused), len(left) - kept, kept


def received_while_deleted():
    """A receive that picked a message before another consumer's delete of it marks it received
    after (moto's receive walks the queue without a lock): the handle that second delivery got
    must delete, as SQS accepts, not be refused as invalid. Returns the refusal or None."""
    import moto_speedups
    from moto.sqs import models
    from moto.sqs.exceptions import ReceiptHandleIsInvalid

    moto_speedups.apply()
    backend = models.sqs_backends["123456789012"]["us-east-1"]
    name = f"twice{len(backend.queues)}"
    backend.create_queue(name)
    backend.send_message(name, "m")
    queue = backend.get_queue(name)
    (picked,) = list(queue.messages)
    (first,) = backend.receive_message(name, 1, 0, 300)
    queue.delete_message(first.receipt_handle)
    picked.mark_received(visibility_timeout=300)  # the racing receive, after the delete
    try:
        queue.delete_message(picked.receipt_handle)
    except ReceiptHandleIsInvalid as e:
        return f"the second delivery's delete was refused: {e!r}"
    if queue._messages:
        return f"{len(queue._messages)} message(s) left in the queue"
    return None


def cloned_trees():
    """The speedups' copy of a parse tree is the copy deepcopy makes: the same nodes, types and
    leaves, each parent the copy's own node, nothing shared with the original."""
    import copy

    import moto_speedups
    from moto.dynamodb.parsing.ast_nodes import Node
    from moto.dynamodb.parsing.expressions import UpdateExpressionParser

    def shape(node, parent, original):
        if not isinstance(node, Node):
            return repr(node)
        assert node.parent is parent, f"{node.type}: parent not the copy's"
        assert node is not original, f"{node.type}: shared with the original"
        kids = node.children if isinstance(node.children, list) else []
        originals = original.children if isinstance(original.children, list) else []
        return (node.type, [shape(k, node, o) for k, o in zip(kids, originals)], len(kids))

    expressions = [
        "SET #s = :s, n = if_not_exists(n, :zero) + :one, l = list_append(if_not_exists(l, :empty), :l) REMOVE z",
        "SET m.#a[0] = :one, m.b = :s, c = c - :one ADD ns :ns DELETE ss :gone",
        "REMOVE a[2], b.c, #d",
    ]
    for text in expressions:
        tree = UpdateExpressionParser.make(text)
        ours, theirs = moto_speedups._clone_tree(tree), copy.deepcopy(tree)
        if shape(ours, None, tree) != shape(theirs, None, tree):
            print(f"parse tree of {text!r} copied differently from deepcopy")
            sys.exit(1)


def main():
    cloned_trees()
    if (wrong := received_while_deleted()) is not None:
        print(f"a message received while it was deleted: {wrong}")
        sys.exit(1)
    if (wrong := kept_order_used()) is not None:
        print(wrong)
        sys.exit(1)
    for _ in range(2):
        got = concurrent_deletes()
        if got != (0, 0, 500):
            print(f"concurrent SQS deletes: {got[0]} refused, {got[1]} deleted messages left behind, {got[2]} of 500 sent meanwhile kept")
            sys.exit(1)
    results = {}
    for name, plain in (("moto", True), ("moto+speedups", False)):
        proc, url = start(plain)
        try:
            results[name] = answers(url)
        finally:
            proc.kill()
    plain, fast = results["moto"], results["moto+speedups"]
    differences = [k for k in {**plain, **fast} if plain.get(k, "nothing") != fast.get(k, "nothing")]
    for k in differences:
        print(f"{k}: moto answered {plain.get(k, 'nothing')!r}\n  with the speedups {fast.get(k, 'nothing')!r}"[:2000])
    if differences:
        print(f"moto_speedups changed {len(differences)} answer(s): {', '.join(differences)}")
        sys.exit(1)
    print(f"moto_speedups: {len(results['moto'])} answers the same with and without the speedups; concurrent SQS deletes exact")


if __name__ == "__main__":
    main()
