"""Classifier speed: comments/s on one core, and the memory the loaded model takes.

    .venv/bin/python -m benchmarks.classifier [--csv ../shared/data/feedback/nhs_fft_nhft_dev.csv]

Uses the comments of a CSV when given (the `FFT answer` or `reviewText` column), else
generated comments. Measures CPU time (process_time), so the figure is per core.
"""

from __future__ import annotations

import argparse
import csv
import random
import resource
import time
from pathlib import Path

from npsloop.services.classifier.active import load_classifier

WORDS = [
    "support",
    "slow",
    "price",
    "great",
    "easy",
    "app",
    "crash",
    "delivery",
    "staff",
    "friendly",
    "expensive",
    "missing",
    "feature",
    "onboarding",
    "confusing",
    "fast",
    "reliable",
    "broken",
    "helpful",
    "waited",
    "days",
    "billing",
    "login",
    "export",
    "report",
]


def comments_from(path: Path | None, n: int) -> list[tuple[str, int | None]]:
    if path and path.exists():
        with open(path, encoding="latin-1", newline="") as handle:
            rows = list(csv.DictReader(handle))
        texts = [r.get("FFT answer") or r.get("reviewText") or "" for r in rows]
        texts = [t for t in texts if t.strip()]
        return [(texts[i % len(texts)], i % 11) for i in range(n)]
    rng = random.Random(7)
    return [(" ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 25))), rng.randint(0, 10)) for _ in range(n)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--csv", type=Path)
    parser.add_argument("-n", type=int, default=20_000)
    args = parser.parse_args()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    classifier = load_classifier()
    loaded = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    items = comments_from(args.csv, args.n)
    started = time.process_time()
    for comment, score in items:
        classifier.classify(comment, score)
    cpu = time.process_time() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"classifier {classifier.version}: {len(items) / cpu:,.0f} comments/s per core "
        f"({len(items)} comments, {cpu:.2f} s CPU); RSS {before:.0f} MB before load, {loaded:.0f} MB loaded, "
        f"{peak:.0f} MB peak"
    )


if __name__ == "__main__":
    main()
