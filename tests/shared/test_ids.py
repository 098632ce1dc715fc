from __future__ import annotations

import time
import uuid

from npsloop.shared.ids import uuid7s


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
