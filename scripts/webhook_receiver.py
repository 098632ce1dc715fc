"""A webhook receiver to try npsloop with: prints each delivery's headers and body.

    python3 scripts/webhook_receiver.py [PORT] [--secret whsec_...]

Standard library only, so it runs before anything is installed. It listens on 127.0.0.1
(port 9000 unless given) and answers every POST with 204. With ``--secret`` (the
``whsec_…`` a subscription returns once) it also checks the Standard Webhooks signature
and says whether it holds. npsloop only sends to a loopback address like this one when
it runs with ``NPSLOOP_ALLOW_PRIVATE_WEBHOOK_URLS=true``.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import json
from http.server import BaseHTTPRequestHandler, HTTPServer


def signature_holds(secret: str, headers: dict[str, str], body: bytes) -> bool:
    """Whether one of ``webhook-signature``'s ``v1,`` signatures is the HMAC of id.timestamp.body."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{headers.get('webhook-id', '')}.{headers.get('webhook-timestamp', '')}.".encode() + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    offered = [s.split(",", 1)[1] for s in headers.get("webhook-signature", "").split() if s.startswith("v1,")]
    return any(hmac.compare_digest(expected, s) for s in offered)


def make_handler(secret: str | None) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            headers = {name.lower(): value for name, value in self.headers.items()}
            lines = [f"--- POST {self.path}"]
            lines += [f"{name}: {value}" for name, value in headers.items()]
            if secret:
                lines.append("signature: " + ("valid" if signature_holds(secret, headers, body) else "INVALID"))
            try:
                lines.append(json.dumps(json.loads(body), indent=2, ensure_ascii=False))
            except ValueError:
                lines.append(body.decode("utf-8", "replace"))
            print("\n".join(lines), flush=True)
            self.send_response(204)
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass  # the delivery printed above says it all

    return Handler


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("port", nargs="?", type=int, default=9000)
    parser.add_argument("--secret", help="the subscription's whsec_… secret, to check signatures")
    args = parser.parse_args(argv)
    server = HTTPServer(("127.0.0.1", args.port), make_handler(args.secret))
    print(f"listening on http://127.0.0.1:{args.port}/ (Ctrl-C stops)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
