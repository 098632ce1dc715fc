"""A webhook receiver in its own process, so the load generator cannot slow it down.

    python -m benchmarks.alert_receiver PORT OUTFILE

Answers every POST with 204 (HTTP/1.1 keep-alive) and appends one line per alert to
OUTFILE: ``<wall-clock seconds> <data.response_id>``.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time


async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, out) -> None:
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            body = await reader.readexactly(length)
            arrived = time.time()
            out.write(f"{arrived:.6f} {json.loads(body)['data']['response_id']}\n")
            writer.write(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n")
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


async def main(port: int, path: str) -> None:
    with open(path, "a", buffering=1) as out:
        server = await asyncio.start_server(lambda r, w: handle(r, w, out), "127.0.0.1", port)
        async with server:
            await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), sys.argv[2]))
