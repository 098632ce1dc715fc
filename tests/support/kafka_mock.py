"""A Kafka cluster for tests: librdkafka's mock cluster in a child process, or a real broker.

No Apache Kafka broker can be installed on the machines these tests run on (see
../shared/TESTING.md), so by default the tests talk to librdkafka's built-in mock cluster:
it speaks the Kafka wire protocol on a loopback port, and npsloop reaches it through
aiokafka exactly as it would a real broker. Known limits of the mock: no CreateTopics
(topics auto-create with 4 partitions) and one member per consumer group, so the tests
run one consumer per group. Set NPSLOOP_TEST_KAFKA_BOOTSTRAP=host:port to run the same
tests against a real broker (the docker-compose Kafka, say) instead.

Run as a script it starts the mock, prints ``host:port`` on the first line and keeps it
alive until its stdin closes — so it dies with the test process that started it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator

import pytest

REAL_BROKER_VARIABLE = "NPSLOOP_TEST_KAFKA_BOOTSTRAP"
# The broker-side minimum (group.min.session.timeout.ms) of a stock Kafka: tests use it so a
# killed consumer's partitions move quickly on the mock and on a real broker alike.
TEST_SESSION_TIMEOUT_MS = 6000


def unique_topic_prefix() -> str:
    """Topics and groups private to one test: a shared broker keeps every earlier test's records."""
    return f"npsloop-test-{uuid.uuid4().hex[:10]}"


class MockKafkaCluster:
    """The mock cluster in a child process (librdkafka needs a live client to keep it up)."""

    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, __file__], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        assert self.process.stdout is not None
        self.bootstrap_servers = self.process.stdout.readline().strip()
        if not self.bootstrap_servers:
            self.process.kill()
            raise RuntimeError("the librdkafka mock cluster did not start (is confluent-kafka installed?)")

    def pause(self) -> None:
        """Freeze the broker (SIGSTOP): connections stay open but nothing is answered, as in a
        hung broker or a network partition; clients see their requests time out."""
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        """The broker answers again, with every record it held before the pause."""
        self.process.send_signal(signal.SIGCONT)

    def close(self) -> None:
        self.resume()  # a frozen process would ignore its closed stdin
        assert self.process.stdin is not None
        self.process.stdin.close()
        try:
            self.process.wait(1)
        except subprocess.TimeoutExpired:  # it keeps nothing worth a slow shutdown
            self.process.kill()
            self.process.wait()


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    """``host:port`` of a Kafka cluster for this test session."""
    real = os.environ.get(REAL_BROKER_VARIABLE)
    if real:
        yield real
        return
    cluster = MockKafkaCluster()
    try:
        yield cluster.bootstrap_servers
    finally:
        cluster.close()


def _serve_mock_cluster() -> None:
    from confluent_kafka import Producer

    client = Producer({"test.mock.num.brokers": 1, "bootstrap.servers": "", "log_level": 3})
    metadata = client.list_topics(timeout=10)
    print(",".join(f"{b.host}:{b.port}" for b in metadata.brokers.values()), flush=True)
    parent_gone = threading.Event()
    threading.Thread(target=lambda: (sys.stdin.read(), parent_gone.set()), daemon=True).start()
    while not parent_gone.is_set():
        client.poll(0.5)


if __name__ == "__main__":
    _serve_mock_cluster()
