"""How the delivery worker shares its pool of sends among destinations: max-min fair, so a
destination held to little (a dead receiver at its base, an open breaker at none) leaves the
rest of the pool to the healthy ones instead of shrinking everyone's equal split."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from npsloop.services.deliveries.destinations import OPEN, water_level
from npsloop.services.deliveries.scheduled import DeliveryWorker
from npsloop.shared.clock import ManualClock
from npsloop.shared.db import Database


def test_the_water_level_gives_what_small_demands_leave_to_the_large_ones():
    assert water_level(128, [16, 16, 16, 100]) == 80  # the three take 16 each; 80 left for the fourth
    assert water_level(128, [16, 16, 16, 64]) == 128  # everything fits: each its own demand
    assert water_level(128, [16, 64]) == 128  # everything fits
    assert water_level(128, []) == 128
    assert water_level(128, [0, 0, 64, 64, 64]) == 42  # open breakers want nothing: three share it all
    assert water_level(128, [16] * 10 + [64]) == 11  # many held at their base: an equal split
    assert water_level(4, [16] * 10) == 1  # more destinations than sends: one each, in turn


async def test_three_hanging_destinations_leave_a_healthy_one_its_grown_limit(tmp_path):
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'x.db'}")
    clock = ManualClock()
    worker = DeliveryWorker(
        db, clock, timeout=10, max_age=timedelta(hours=1), allow_private=True, concurrency=128, per_destination=16
    )
    try:
        now = datetime(2026, 12, 7, tzinfo=UTC)
        pool = worker._pools["subscription"]
        for i in range(3):  # three receivers that never answer, each holding its base share
            hanging = worker._destination(f"subscription:hang-{i}")
            hanging.in_flight, hanging.backlogged = 16, True
            pool.in_flight += 16
        healthy = worker._destination("subscription:healthy")
        healthy.limit, healthy.backlogged = 64, True  # earned by answering quickly
        dead = worker._destination("subscription:dead")
        dead.breaker.state, dead.breaker.retry_at, dead.backlogged = OPEN, now + timedelta(minutes=5), True
        wanted = {
            destination.key: free
            for destination, free in worker._wanted(now, look_everywhere=True)
            if destination.kind == "subscription"  # the policy channels have a pool of their own
        }
        assert wanted == {"subscription:healthy": 64}  # an equal split of five gave it 25
    finally:
        await worker.close()
        await db.dispose()
