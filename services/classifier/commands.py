"""Command logic behind ``npsloop classify`` and ``npsloop classifier train``."""

from __future__ import annotations

import json
import pathlib
import sys
import time
from collections.abc import Iterable
from typing import Any, TextIO

from shared.taxonomy import ThemeDefinition

from .model import BuiltinClassifier, Classifier
from .training import LabelledExample, save, train


def _score(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or int(value) != value or not 0 <= value <= 10:
        raise ValueError(f"score must be an integer 0-10 or null, got {value!r}")
    return int(value)


def run_classify(infile: TextIO, outfile: TextIO, classifier: Classifier) -> int:
    """Classify JSON Lines ``{"id", "score", "comment"}``; bad lines get an ``error`` line."""
    count = 0
    for number, line in enumerate(infile, start=1):
        if not line.strip():
            continue
        record_id: Any = None
        try:
            record = json.loads(line)
            if not isinstance(record, dict):
                raise ValueError("expected a JSON object")
            record_id = record.get("id")
            comment = record.get("comment")
            if comment is not None and not isinstance(comment, str):
                raise ValueError("comment must be a string or null")
            result = classifier.classify(comment, _score(record.get("score")))
            out = {"id": record_id, **result.as_dict()}
        except ValueError as exc:  # json.JSONDecodeError is a ValueError
            out = {"id": record_id, "error": f"line {number}: {exc}"}
        outfile.write(json.dumps(out, ensure_ascii=False) + "\n")
        count += 1
    outfile.flush()
    return count


def read_labels(handle: TextIO) -> list[LabelledExample]:
    """Labelled JSON Lines: ``{"comment", "score"?, "themes"?: [...], "sentiment"?}``."""
    examples = []
    for number, line in enumerate(handle, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            comment = record["comment"]
            if not isinstance(comment, str):
                raise ValueError("comment must be a string")
            themes = record.get("themes")
            if themes is not None:
                themes = [t["id"] if isinstance(t, dict) else str(t) for t in themes]
            sentiment = record.get("sentiment")
            if sentiment is not None and sentiment not in ("positive", "neutral", "negative"):
                raise ValueError(f"sentiment must be positive, neutral or negative, got {sentiment!r}")
            examples.append(LabelledExample(comment, _score(record.get("score")), themes, sentiment))
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"labels line {number}: {exc}") from None
    return examples


def run_train(*, labels_file: TextIO | None, corrections: Iterable[LabelledExample],
              themes: list[ThemeDefinition] | None, data_dir: pathlib.Path) -> str:
    """Fit the organisation's model from corrections (+ labelled file) and store it; return its version."""
    started = time.monotonic()
    examples = list(corrections)
    print(f"classifier train: {len(examples)} stored corrections", file=sys.stderr)
    if labels_file is not None:
        extra = read_labels(labels_file)
        print(f"classifier train: {len(extra)} labelled examples from file", file=sys.stderr)
        examples.extend(extra)
    if not examples:
        raise ValueError("no labelled examples: correct some classifications or pass --labels FILE")
    base = BuiltinClassifier(themes)
    model = train(examples, themes=base.themes, base=base)
    print(f"classifier train: fitted {len(model.theme_heads)} theme heads"
          f"{' and sentiment' if model.sentiment_head else ''} in {time.monotonic() - started:.1f}s",
          file=sys.stderr)
    version = save(model, pathlib.Path(data_dir))
    print(f"classifier train: saved {version} under {pathlib.Path(data_dir) / 'classifier'}", file=sys.stderr)
    return version
