"""The README stays short and every page's links lead somewhere.

The README is for users (what npsloop is, the two commands, the first five minutes, links);
the reference lives in docs/. Links must be relative so they work on GitHub and in a clone.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from npsloop.shared.settings import ENV_PREFIX, Settings

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
PAGES = sorted(
    [README, ROOT / "CONTRIBUTING.md", ROOT / "CHANGELOG.md", ROOT / "benchmarks" / "README.md"]
    + list((ROOT / "docs").rglob("*.md"))
)

FENCED = re.compile(r"^```.*?^```", re.S | re.M)
CODE_SPAN = re.compile(r"`[^`\n]*`")
LINK = re.compile(r"!?\[[^\]\n]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")


def links(page: Path) -> list[str]:
    """Link targets in ``page``'s text, not counting what code blocks and code spans show."""
    text = CODE_SPAN.sub("", FENCED.sub("", page.read_text(encoding="utf-8")))
    return LINK.findall(text)


def test_the_readme_stays_short():
    lines = README.read_text(encoding="utf-8").count("\n")
    assert lines <= 260, f"README.md has {lines} lines: move details to docs/, figures to benchmarks/README.md"


def test_the_link_pattern_finds_links_and_skips_code():
    assert "docs/configuration.md" in links(README)
    assert "CONTRIBUTING.md" in links(README)
    assert not any(" " in target for target in links(README))


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_points_at_a_file_that_exists(page: Path):
    broken = []
    for target in links(page):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
            continue  # https://…, mailto:…, or an anchor on the same page
        if target.startswith("/"):
            broken.append(f"{target} (absolute: GitHub needs a path relative to the page)")
            continue
        path = (page.parent / target.split("#", 1)[0]).resolve()
        if not path.exists() or ROOT not in path.parents:
            broken.append(target)
    assert not broken, f"{page.relative_to(ROOT)}: links to missing files: {broken}"


def test_every_setting_is_documented_in_the_configuration_page():
    page = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    missing = [
        ENV_PREFIX + name.upper() for name in Settings.model_fields if f"`{ENV_PREFIX}{name.upper()}`" not in page
    ]
    assert not missing, f"docs/configuration.md does not describe {missing}"


def test_the_make_targets_the_readme_names_exist():
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    targets = set(re.findall(r"^([a-z][a-z-]*):", makefile, re.M))
    named = set(re.findall(r"\bmake ([a-z][a-z-]*)", README.read_text(encoding="utf-8")))
    assert {"up", "test"} <= named
    assert named <= targets, f"README names make targets the Makefile lacks: {sorted(named - targets)}"
