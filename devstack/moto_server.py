"""moto_server with the local stack's speed fixes (devstack/moto_speedups.py) applied first, and a
request log: every AWS request is counted by service and action, read with
`GET /__devstack/requests` (`{"sqs:SendMessageBatch": 12, ...}`) and reset with `DELETE`.

Usage: python devstack/moto_server.py [moto_server options], e.g. `-H 127.0.0.1 -p 5000`.
Set DEVSTACK_PLAIN_MOTO=1 to run moto unpatched (for side-by-side measurements).
"""

import collections
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
LOCK = threading.Lock()


def request_log(app):
    """Counts each request by `service:Action` (from X-Amz-Target) before moto handles it."""

    def counted(environ, start_response):
        if environ.get("PATH_INFO") == "/__devstack/requests":
            with LOCK:
                if environ.get("REQUEST_METHOD") == "DELETE":
                    COUNTS.clear()
                body = json.dumps(dict(COUNTS)).encode()
            start_response("200 OK", [("Content-Type", "application/json")])
            return [body]
        target = environ.get("HTTP_X_AMZ_TARGET")
        if target and "." in target:
            prefix, action = target.split(".", 1)
            with LOCK:
                COUNTS[f"{SERVICES.get(prefix, prefix)}:{action}"] += 1
        return app(environ, start_response)

    return counted


_run_simple = moto.server.run_simple


def run_counted(hostname, port, application, *args, **kwargs):
    return _run_simple(hostname, port, request_log(application), *args, **kwargs)


moto.server.run_simple = run_counted

# One log line per request costs time under load and says nothing the stack needs; errors stay.
logging.getLogger("werkzeug").setLevel(logging.WARNING)

moto.server.main(sys.argv[1:])
