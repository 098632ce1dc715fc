"""The distribution installs one import name, ``npsloop``, and nothing generic beside it:
another distribution's ``services`` or ``shared`` must never collide with ours."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_wheel_holds_only_the_npsloop_package_with_its_data(tmp_path):
    built = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(ROOT),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert built.returncode == 0, built.stderr
    [wheel] = tmp_path.glob("npsloop-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    top = {name.split("/", 1)[0] for name in names if not name.split("/", 1)[0].endswith(".dist-info")}
    assert top == {"npsloop"}, top
    for shipped in (
        "npsloop/services/cli.py",
        "npsloop/shared/settings.py",
        "npsloop/services/migrations/env.py",
        "npsloop/services/analytics/dashboard/index.html",
    ):
        assert shipped in names, shipped
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    assert "npsloop = npsloop.services.cli:main" in zipfile.ZipFile(wheel).read(entry_points).decode()


def test_the_link_folders_point_at_the_source_folders():
    for name in ("services", "shared"):
        link = ROOT / "npsloop" / name
        assert link.is_symlink() and link.resolve() == (ROOT / name).resolve(), link
