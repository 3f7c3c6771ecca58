"""moto_server with the local stack's speed fixes (devstack/moto_speedups.py) applied first, and a
request log: every AWS request is counted by service and action, read with
`GET /__devstack/requests` (`{"sqs:SendMessageBatch": 12, ...}`), per caller's access key id at
`GET /__devstack/callers` (`{"WebhookFunction": {"dynamodb:PutItem": 3, ...}}`), what a caller
reached within those at `GET /__devstack/scopes` (`{"MapperFunction": ["secret=gainsight-access-key",
...], "WebhookFunction": ["EVENT#", ...]}`: the secrets it decrypted, and the webhook's partition
keys), each request's action and resource once `POST /__devstack/audit` has turned the audit on
(`GET` it: `{"PusherFunction": ["dynamodb:PutItem gs-sf-sync-StateTable-..", ...]}`), the
DynamoDB write capacity units each caller's writes cost once `POST /__devstack/capacity` has
turned the meter on (`GET` it: `{"PusherFunction": {"dynamodb:TransactWriteItems": 40,
"dynamodb:TransactWriteItems (indexes)": 12, ...}}`: every unit, then those of index entries;
computed by DynamoDB's rules from the items written: devstack/capacity.py), and reset with
`DELETE` on any of them.

Usage: python devstack/moto_server.py [moto_server options], e.g. `-H 127.0.0.1 -p 5000`.
Set DEVSTACK_PLAIN_MOTO=1 to run moto unpatched, DEVSTACK_HTTP=werkzeug to serve it with moto's own
server (both for side-by-side measurements).
"""

import collections
import io
import json
import logging
import os
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

if os.environ.get("DEVSTACK_PLAIN_MOTO") != "1":
    import moto_speedups

    moto_speedups.apply()

import moto.server  # noqa: E402

# The service of each JSON-protocol target prefix the stack uses.
SERVICES = {"AmazonSQS": "sqs", "DynamoDB_20120810": "dynamodb", "TrentService": "kms"}
COUNTS = collections.Counter()
# The same counts per caller: the access key id each request was signed with (the local stack
# gives each function its own, so what each function called can be checked against its IAM).
CALLERS = collections.defaultdict(collections.Counter)
# What each caller reached, for the checks of its IAM conditions: the encryption context's
# `secret` of each KMS Decrypt, and the partition keys of the webhook's DynamoDB requests, each
# as its kind (the text up to its first `#`) or, for a secret's item, whole. Only those requests'
# bodies are read, so the rest of the stack pays nothing for it.
SCOPES = collections.defaultdict(set)
SCOPED_TABLE_CALLERS = {"WebhookFunction"}
LOCK = threading.Lock()


# With the audit on (`POST /__devstack/audit`), each caller's requests as `<action> <resource>`:
# the table (and index) or queue each names, a transaction's items as the PutItem, UpdateItem,
# DeleteItem or ConditionCheckItem IAM authorises them as, so a test can check each against the
# caller's policy. Off by default: it reads every request's body.
AUDIT = {"on": False}
AUDITED = collections.defaultdict(set)

# With the meter on (`POST /__devstack/capacity`), the write capacity units of each caller's
# DynamoDB writes, by action. Metered writes run one at a time, so that the items read before
# and after a write are that write's.
METER = {"on": False}
CAPACITY = collections.defaultdict(collections.Counter)
METER_LOCK = threading.Lock()
ADMIN_PATHS = ("/__devstack/requests", "/__devstack/callers", "/__devstack/scopes",
               "/__devstack/audit", "/__devstack/capacity")


def audited(name, body):
    """`<action> <resource>` strings of one request, as IAM authorises it."""
    service, action = name.split(":", 1)
    if service == "sqs":
        queue = body.get("QueueUrl", "").rstrip("/").rsplit("/", 1)[-1]
        return {f"{name} {queue}"}
    if service != "dynamodb":
        return {f"{name} *"}
    if action == "TransactWriteItems":
        ops = {"Put": "PutItem", "Update": "UpdateItem", "Delete": "DeleteItem",
               "ConditionCheck": "ConditionCheckItem"}
        return {f"dynamodb:{ops.get(op, op)} {detail.get('TableName', '')}"
                for item in body.get("TransactItems", []) for op, detail in item.items()}
    if action in ("BatchWriteItem", "BatchGetItem"):
        return {f"{name} {table}" for table in body.get("RequestItems", {})}
    table = body.get("TableName", "")
    if body.get("IndexName"):
        table += "/index/" + body["IndexName"]
    return {f"{name} {table}"}


def key_kind(pk):
    """A partition key as its kind: `EVENT#`, `RUN#`, or a secret's whole key."""
    return pk if pk.startswith("SECRET#") else pk.split("#", 1)[0] + "#"


def partition_keys(action, body):
    """The partition keys (`pk`) a DynamoDB request names."""
    def pk(item):
        value = (item or {}).get("pk", {})
        return [value["S"]] if "S" in value else []

    keys = []
    if action in ("GetItem", "DeleteItem", "UpdateItem"):
        keys += pk(body.get("Key"))
    elif action == "PutItem":
        keys += pk(body.get("Item"))
    elif action == "BatchWriteItem":
        for requests in body.get("RequestItems", {}).values():
            for r in requests:
                keys += pk(r.get("PutRequest", {}).get("Item")) + pk(r.get("DeleteRequest", {}).get("Key"))
    elif action == "BatchGetItem":
        for table in body.get("RequestItems", {}).values():
            for key in table.get("Keys", []):
                keys += pk(key)
    elif action == "TransactWriteItems":
        for item in body.get("TransactItems", []):
            for op in item.values():
                keys += pk(op.get("Key")) + pk(op.get("Item"))
    elif action == "Query":
        keys += [v["S"] for v in body.get("ExpressionAttributeValues", {}).values() if "S" in v]
    return keys


def note_scope(environ, caller, name):
    """Records what `caller` reached with request `name`, reading its body when it matters."""
    wanted = name == "kms:Decrypt" or (name.startswith("dynamodb:") and caller in SCOPED_TABLE_CALLERS)
    if not (wanted or AUDIT["on"]):
        return
    length = int(environ.get("CONTENT_LENGTH") or 0)
    if not length:
        # No length said (or no body): the body is left for moto as it came.
        return
    raw = environ["wsgi.input"].read(length)
    environ["wsgi.input"] = io.BytesIO(raw)
    try:
        body = json.loads(raw or b"{}")
    except ValueError:
        return
    if AUDIT["on"]:
        with LOCK:
            AUDITED[caller].update(audited(name, body))
    if not wanted:
        return
    if name == "kms:Decrypt":
        reached = {"secret=" + body.get("EncryptionContext", {}).get("secret", "")}
    else:
        reached = {key_kind(k) for k in partition_keys(name.split(":", 1)[1], body)}
    with LOCK:
        SCOPES[caller].update(reached)


def access_key(environ):
    """The access key id of a SigV4 `Authorization` header, or `-`."""
    auth = environ.get("HTTP_AUTHORIZATION", "")
    marker = "Credential="
    if marker not in auth:
        return "-"
    return auth.split(marker, 1)[1].split("/", 1)[0]


def request_log(app):
    """Counts each request by `service:Action` (from X-Amz-Target) before moto handles it."""

    def counted(environ, start_response):
        if environ.get("PATH_INFO") in ADMIN_PATHS:
            with LOCK:
                if environ.get("REQUEST_METHOD") == "DELETE":
                    COUNTS.clear()
                    CALLERS.clear()
                    SCOPES.clear()
                    AUDITED.clear()
                    CAPACITY.clear()
                if environ.get("REQUEST_METHOD") == "POST" and environ["PATH_INFO"] == "/__devstack/audit":
                    AUDIT["on"] = True
                if environ.get("REQUEST_METHOD") == "POST" and environ["PATH_INFO"] == "/__devstack/capacity":
                    METER["on"] = True
                if environ["PATH_INFO"] == "/__devstack/audit":
                    body = json.dumps({k: sorted(v) for k, v in AUDITED.items()}).encode()
                elif environ["PATH_INFO"] == "/__devstack/capacity":
                    body = json.dumps({k: dict(v) for k, v in CAPACITY.items()}).encode()
                elif environ["PATH_INFO"] == "/__devstack/requests":
                    body = json.dumps(dict(COUNTS)).encode()
                elif environ["PATH_INFO"] == "/__devstack/scopes":
                    body = json.dumps({k: sorted(v) for k, v in SCOPES.items()}).encode()
                else:
                    body = json.dumps({k: dict(v) for k, v in CALLERS.items()}).encode()
            start_response("200 OK", [("Content-Type", "application/json")])
            return [body]
        target = environ.get("HTTP_X_AMZ_TARGET")
        if target and "." in target:
            prefix, action = target.split(".", 1)
            name = f"{SERVICES.get(prefix, prefix)}:{action}"
            caller = access_key(environ)
            with LOCK:
                COUNTS[name] += 1
                CALLERS[caller][name] += 1
            note_scope(environ, caller, name)
            if METER["on"] and name.startswith("dynamodb:"):
                return metered(app, environ, start_response, caller, name)
        return app(environ, start_response)

    return counted


def metered(app, environ, start_response, caller, name):
    """Runs a DynamoDB request, adding what it wrote to the caller's capacity units."""
    import capacity

    action = name.split(":", 1)[1]
    if action not in capacity.WRITE_ACTIONS:
        return app(environ, start_response)
    length = int(environ.get("CONTENT_LENGTH") or 0)
    raw = environ["wsgi.input"].read(length) if length else b""
    environ["wsgi.input"] = io.BytesIO(raw)
    try:
        body = json.loads(raw or b"{}")
    except ValueError:
        return app(environ, start_response)
    with METER_LOCK:
        meter = capacity.Meter(region(environ), action, body)
        answer = list(app(environ, start_response))
        table_units, index_units = meter.after()
    with LOCK:
        CAPACITY[caller][name] += table_units + index_units
        CAPACITY[caller][name + " (indexes)"] += index_units
    return answer


def region(environ):
    """The region of a SigV4 `Authorization` header's credential scope (us-east-1 without one)."""
    auth = environ.get("HTTP_AUTHORIZATION", "")
    marker = "Credential="
    if marker not in auth:
        return "us-east-1"
    scope = auth.split(marker, 1)[1].split(",", 1)[0].split("/")
    return scope[2] if len(scope) > 2 else "us-east-1"


_run_simple = moto.server.run_simple


def run_counted(hostname, port, application, *args, **kwargs):
    """Serves moto with the request log, on waitress unless DEVSTACK_HTTP=werkzeug.

    moto_server's own server (werkzeug's development server) closes the connection after every
    answer, so each AWS request paid a TCP handshake and a new thread. waitress keeps connections
    alive (the SDK's pool reuses them) and answers from a pool of threads: moto's CPU time for a
    GetItem went from 1.5 to 1.2 ms, for an empty ReceiveMessage from 1.7 to 1.1 ms. A long poll
    (ReceiveMessage waiting up to 20 s) holds a thread, so the pool is large.
    """
    app = request_log(application)
    if os.environ.get("DEVSTACK_HTTP") == "werkzeug":
        return _run_simple(hostname, port, app, *args, **kwargs)
    import waitress

    waitress.serve(
        app,
        host=hostname,
        port=port,
        threads=64,
        # Idle keep-alive connections are closed by the client first (the SDK's pool drops them
        # after 90 s), never under a request it is about to send.
        channel_timeout=600,
        connection_limit=1000,
        asyncore_use_poll=True,
        _quiet=True,
    )


moto.server.run_simple = run_counted

# One log line per request costs time under load and says nothing the stack needs; errors stay.
logging.getLogger("werkzeug").setLevel(logging.WARNING)

moto.server.main(sys.argv[1:])
