"""Container health check for every npsloop role (the image's HEALTHCHECK runs it).

The api and all-in-one roles serve /healthz, so they are asked directly. Worker roles have no
HTTP port; they count as healthy while the database and the Kafka brokers accept
connections, which is what they need to make progress. Exit 0 = healthy, 1 = not.
"""

import os
import socket
import sys
import urllib.request
from urllib.parse import urlsplit


def role() -> str:
    with open("/proc/1/cmdline", "rb") as f:
        args = [a.decode() for a in f.read().split(b"\0") if a]
    if "serve" in args and args.index("serve") + 1 < len(args):
        return args[args.index("serve") + 1]
    return "up" if "up" in args else "other"


def reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=3):
            return True
    except OSError:
        return False


def main() -> int:
    current = role()
    if current in ("api", "up"):
        port = os.environ.get("NPSLOOP_PORT", "8000")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=4) as response:
                return 0 if response.status == 200 else 1
        except OSError:
            return 1
    targets = []
    database_url = os.environ.get("NPSLOOP_DATABASE_URL", "")
    if database_url.startswith("postgres"):
        parts = urlsplit(database_url)
        targets.append((parts.hostname or "localhost", parts.port or 5432))
    for server in filter(None, os.environ.get("NPSLOOP_KAFKA_BOOTSTRAP_SERVERS", "").split(",")):
        host, _, port = server.strip().rpartition(":")
        targets.append((host, int(port)))
    return 0 if all(reachable(h, p) for h, p in targets) else 1


if __name__ == "__main__":
    sys.exit(main())
