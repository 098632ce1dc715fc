"""`npsloop classify` as users run it: JSON Lines in, JSON Lines out."""

from __future__ import annotations

import json
import subprocess

from tests.support import processes


def test_classify_reads_json_lines_and_writes_one_classification_per_line(tmp_path):
    lines = [
        {"id": "a", "score": 2, "comment": "Far too expensive for what you get"},
        {"id": "b", "comment": "Quick and friendly support"},
        {"id": "c", "score": 9, "comment": ""},
    ]
    env = processes.base_env(NPSLOOP_DATA_DIR=str(tmp_path))
    result = subprocess.run(
        [*processes.npsloop_command(), "classify"],
        input="\n".join(json.dumps(x) for x in lines),
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    out = [json.loads(line) for line in result.stdout.splitlines()]
    assert [o["id"] for o in out] == ["a", "b", "c"]
    assert out[0]["category"] == "detractor" and "pricing" in [t["id"] for t in out[0]["themes"]]
    assert out[1]["category"] is None and out[1]["sentiment"] == "positive"
    assert out[2]["category"] == "promoter" and out[2]["themes"] == []
    assert all(o["classifier_version"] for o in out)
