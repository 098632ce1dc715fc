from __future__ import annotations

import time
import uuid

from npsloop.shared.ids import new_id, uuid7s


def test_ids_are_distinct_rfc_9562_version_7_uuids_of_the_current_millisecond():
    before = time.time_ns() // 1_000_000
    ids = uuid7s(1000)
    after = time.time_ns() // 1_000_000
    parsed = [uuid.UUID(i) for i in ids]
    assert len(set(ids)) == 1000
    assert all(str(p) == i for p, i in zip(parsed, ids))  # canonical lower-case 8-4-4-4-12
    assert all(p.version == 7 and p.variant == uuid.RFC_4122 for p in parsed)
    assert all(before <= p.int >> 80 <= after for p in parsed)
    assert uuid7s(0) == []


def test_later_ids_sort_after_earlier_ones():
    first = uuid7s(5)
    time.sleep(0.002)
    second = uuid7s(5)
    assert max(first) < min(second)


def test_one_id_at_a_time_is_the_same_kind_of_id():
    before = time.time_ns() // 1_000_000
    ids = [new_id() for _ in range(1000)]
    after = time.time_ns() // 1_000_000
    parsed = [uuid.UUID(i) for i in ids]
    assert len(set(ids)) == 1000
    assert all(str(p) == i for p, i in zip(parsed, ids))
    assert all(p.version == 7 and p.variant == uuid.RFC_4122 for p in parsed)
    assert all(before <= p.int >> 80 <= after for p in parsed)
    # the 74 random bits vary: each bit position takes both values across a thousand ids
    random_bits = [p.int & ((1 << 62) - 1) | ((p.int >> 64) & 0xFFF) << 62 for p in parsed]
    assert all(any(r >> b & 1 for r in random_bits) and not all(r >> b & 1 for r in random_bits) for b in range(74))


def test_events_and_rows_of_the_consumers_get_time_ordered_ids():
    from npsloop.shared.events import CloudEvent

    event = CloudEvent(type="npsloop.test.v1", time="2026-12-07T00:00:00Z", partitionkey="c1", data={})
    assert uuid.UUID(event.id).version == 7
