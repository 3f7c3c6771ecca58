"""moto_server with the local stack's speed fixes (devstack/moto_speedups.py) applied first.

Usage: python devstack/moto_server.py [moto_server options], e.g. `-H 127.0.0.1 -p 5000`.
Set DEVSTACK_PLAIN_MOTO=1 to run moto unpatched (for side-by-side measurements).
"""

import logging
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

if os.environ.get("DEVSTACK_PLAIN_MOTO") != "1":
    import moto_speedups

    moto_speedups.apply()

from moto.server import main  # noqa: E402

# One log line per request costs time under load and says nothing the stack needs; errors stay.
logging.getLogger("werkzeug").setLevel(logging.WARNING)

main(sys.argv[1:])
