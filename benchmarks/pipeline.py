"""End-to-end latency: POST a detractor → task stored → signed alert delivered to a webhook.

    .venv/bin/python -m benchmarks.pipeline [--rate 500] [--seconds 10]

Runs `npsloop up` (embedded default), subscribes a local receiver to
npsloop.followup.opened.v1, sends detractor responses at a fixed rate from an asyncio
load generator (bounded in count and time, 127.0.0.1 only) and prints, per response,
the time from the start of its POST to the arrival of its alert: p50, p99, max, and how
many arrived. Also prints POST latency.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx

from benchmarks.common import NPSLOOP, Server, create_key, free_port, npsloop_env, rss_mb, scratch_dir


class AlertReceiver:
    def __init__(self) -> None:
        self.arrivals: dict[str, float] = {}
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                event = json.loads(body)
                receiver.arrivals.setdefault(event["data"]["response_id"], time.perf_counter())
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/alerts"


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


async def load(base_url: str, key: str, rate: int, seconds: int) -> tuple[dict[str, float], list[float]]:
    sent: dict[str, float] = {}
    post_latency: list[float] = []
    headers = {"Authorization": f"Bearer {key}"}
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    async with httpx.AsyncClient(base_url=base_url, headers=headers, limits=limits, timeout=30) as client:
        async def one(i: int) -> None:
            started = time.perf_counter()
            reply = await client.post("/v1/responses", json={
                "score": i % 7, "comment": "Support was slow to answer", "customer": {"id": f"cust-{i}"}})
            post_latency.append(time.perf_counter() - started)
            if reply.status_code == 202:
                sent[reply.json()["id"]] = started

        tasks = []
        begin = time.perf_counter()
        for i in range(rate * seconds):
            target = begin + i / rate
            delay = target - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(i)))
        await asyncio.gather(*tasks)
    return sent, post_latency


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=int, default=500)
    parser.add_argument("--seconds", type=int, default=10)
    args = parser.parse_args()

    work = scratch_dir("bench-pipeline-")
    env = npsloop_env(work / "data", NPSLOOP_ALLOW_PRIVATE_WEBHOOK_URLS="1", NPSLOOP_POLL_INTERVAL_SECONDS="0.05")
    key = create_key(env, work)
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    server = Server([*NPSLOOP, "up", "--port", str(port)], env=env, cwd=work, ready_url=f"{base_url}/readyz")
    receiver = AlertReceiver()
    try:
        httpx.post(f"{base_url}/v1/webhooks", headers={"Authorization": f"Bearer {key}"},
                   json={"url": receiver.url, "events": ["npsloop.followup.opened.v1"]}).raise_for_status()
        sent, post_latency = asyncio.run(load(base_url, key, args.rate, args.seconds))
        deadline = time.perf_counter() + 60
        while len(receiver.arrivals) < len(sent) and time.perf_counter() < deadline:
            time.sleep(0.1)
        loaded = rss_mb(server.process.pid)
    finally:
        server.stop()
    latencies = [receiver.arrivals[r] - t for r, t in sent.items() if r in receiver.arrivals]
    print(f"end-to-end benchmark: {args.rate} req/s for {args.seconds} s against npsloop up (SQLite)")
    print(f"  POST      p50 {statistics.median(post_latency) * 1000:7.1f} ms  p99 {percentile(post_latency, 0.99) * 1000:7.1f} ms"
          f"  ({len(sent)} accepted of {args.rate * args.seconds})")
    if latencies:
        print(f"  POST→alert p50 {statistics.median(latencies) * 1000:7.1f} ms  p99 {percentile(latencies, 0.99) * 1000:7.1f} ms"
              f"  max {max(latencies) * 1000:7.1f} ms  ({len(latencies)} alerts of {len(sent)})")
    print(f"  RSS after the run {loaded:.0f} MB")


if __name__ == "__main__":
    main()
