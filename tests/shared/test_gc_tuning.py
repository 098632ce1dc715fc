"""A served process freezes its start-up heap and collects young objects less often."""

from __future__ import annotations

import subprocess
import sys

from npsloop.shared.settings import Settings

PROBE = """
import gc
from npsloop.shared import gc_tuning
before = gc.get_freeze_count(), gc.get_threshold()
gc_tuning.tune_for_service()
after = gc.get_freeze_count(), gc.get_threshold()
print(before[0], before[1][0], after[0], after[1][0], after[1][1:] == before[1][1:])
"""


def test_tuning_freezes_the_heap_and_raises_only_the_young_threshold():
    # In a child process: freezing the test runner's own heap would outlive this test.
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True).stdout.split()
    frozen_before, young_before, frozen_after, young_after, rest_unchanged = out
    assert int(frozen_before) == 0 and int(frozen_after) > 1000
    assert int(young_before) < int(young_after) == 50_000 and rest_unchanged == "True"


def test_tuning_is_on_by_default_and_can_be_switched_off(monkeypatch):
    assert Settings().gc_tuning is True
    monkeypatch.setenv("NPSLOOP_GC_TUNING", "false")
    assert Settings().gc_tuning is False
