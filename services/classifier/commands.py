"""Command logic behind ``npsloop classify`` and ``npsloop classifier train`` / ``evaluate``."""

from __future__ import annotations

import json
import pathlib
import sys
import time
from collections.abc import Iterable
from typing import Any, TextIO

from npsloop.services.classifier.embeddings import load_encoder
from npsloop.services.classifier.evaluation import CrossValidation, check_folds, cross_validate
from npsloop.services.classifier.model import BuiltinClassifier, Classifier
from npsloop.services.classifier.sentiment_head import MIN_EXAMPLES as SENTIMENT_MIN_EXAMPLES
from npsloop.services.classifier.sentiment_head import MIN_PER_CLASS as SENTIMENT_MIN_PER_CLASS
from npsloop.services.classifier.stored_model import save
from npsloop.services.classifier.training import LabelledExample, train
from npsloop.shared.taxonomy import ThemeDefinition


def _score(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or int(value) != value or not 0 <= value <= 10:
        raise ValueError(f"score must be an integer 0-10 or null, got {value!r}")
    return int(value)


CLASSIFY_CHUNK = 256  # lines read ahead, so that a model with embeddings encodes them in one batch


def run_classify(infile: TextIO, outfile: TextIO, classifier: Classifier) -> int:
    """Classify JSON Lines ``{"id", "score", "comment"}``; bad lines get an ``error`` line."""
    count = 0
    chunk: list[tuple[int, str]] = []
    for number, line in enumerate(infile, start=1):
        if line.strip():
            chunk.append((number, line))
        if len(chunk) >= CLASSIFY_CHUNK:
            count += _classify_chunk(chunk, outfile, classifier)
            chunk = []
    count += _classify_chunk(chunk, outfile, classifier)
    outfile.flush()
    return count


def _classify_chunk(chunk: list[tuple[int, str]], outfile: TextIO, classifier: Classifier) -> int:
    parsed: list[tuple[Any, str | None, int | None] | dict] = []
    for number, line in chunk:
        record_id: Any = None
        try:
            record = json.loads(line)
            if not isinstance(record, dict):
                raise ValueError("expected a JSON object")
            record_id = record.get("id")
            comment = record.get("comment")
            if comment is not None and not isinstance(comment, str):
                raise ValueError("comment must be a string or null")
            parsed.append((record_id, comment, _score(record.get("score"))))
        except ValueError as exc:  # json.JSONDecodeError is a ValueError
            parsed.append({"id": record_id, "error": f"line {number}: {exc}"})
    if classifier.prepares_batches:
        classifier.prepare([item[1] for item in parsed if isinstance(item, tuple)])
    for item in parsed:
        if isinstance(item, tuple):
            record_id, comment, score = item
            item = {"id": record_id, **classifier.classify(comment, score).as_dict()}
        outfile.write(json.dumps(item, ensure_ascii=False) + "\n")
    return len(parsed)


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


def _labelled(
    corrections: Iterable[LabelledExample], labels_file: TextIO | None, command: str
) -> list[LabelledExample]:
    """Stored corrections plus the labelled file's lines, counted on stderr."""
    examples = list(corrections)
    print(f"classifier {command}: {len(examples)} stored corrections", file=sys.stderr)
    if labels_file is not None:
        extra = read_labels(labels_file)
        print(f"classifier {command}: {len(extra)} labelled examples from file", file=sys.stderr)
        examples.extend(extra)
    return examples


def run_evaluate(
    *,
    labels_file: TextIO | None,
    corrections: Iterable[LabelledExample],
    themes: list[ThemeDefinition] | None,
    folds: int,
    outfile: TextIO,
    as_json: bool = False,
) -> CrossValidation:
    """Cross-validate training on the organisation's labels against the built-in model and
    print per-theme precision and recall, theme micro-F1 and sentiment macro-F1 of both
    (``as_json``: one JSON object). Stores nothing."""
    examples = _labelled(corrections, labels_file, "evaluate")
    check_folds(len(examples), folds)  # before any work: a clear message, not a traceback midway
    base = BuiltinClassifier(themes)

    def progress(fold: int, total: int, trained_on: int, seconds: float) -> None:
        print(f"classifier evaluate: fold {fold}/{total}: trained on {trained_on} in {seconds:.1f}s", file=sys.stderr)

    result = cross_validate(examples, base=base, folds=folds, progress=progress)
    if as_json:
        json.dump(
            {
                "folds": folds,
                "examples": len(examples),
                "builtin": result.builtin.as_dict(),
                "trained": result.trained.as_dict(),
            },
            outfile,
        )
        outfile.write("\n")
        return result
    theme_labelled = sum(1 for e in examples if e.themes is not None)
    sentiment_labelled = sum(1 for e in examples if e.sentiment)
    outfile.write(
        f"{folds}-fold cross-validation on {len(examples)} labelled comments ({theme_labelled} labelled "
        f"for themes, {sentiment_labelled} for sentiment): each fold classified by a model trained on "
        f"the others\n"
    )
    outfile.write(
        f"{'theme':<28} {'built-in prec':>13} {'recall':>6}  {'trained prec':>12} {'recall':>6}  {'labelled':>8}\n"
    )
    for theme, (p, r, support) in result.builtin.per_theme.items():
        trained_p, trained_r, _ = result.trained.per_theme[theme]
        outfile.write(f"{theme:<28} {p:13.3f} {r:6.3f}  {trained_p:12.3f} {trained_r:6.3f}  {support:8d}\n")
    for label, before, after in (
        ("theme micro-F1", result.builtin.micro_f1, result.trained.micro_f1),
        ("sentiment macro-F1", result.builtin.sentiment_macro_f1, result.trained.sentiment_macro_f1),
    ):
        if before is None or after is None:
            outfile.write(f"{label:<28} no labels\n")
        else:
            outfile.write(f"{label:<28} {before:13.3f} {'':6}  {after:12.3f} {'':6}  ({after - before:+.3f})\n")
    outfile.flush()
    return result


def run_train(
    *,
    labels_file: TextIO | None,
    corrections: Iterable[LabelledExample],
    themes: list[ThemeDefinition] | None,
    data_dir: pathlib.Path,
    embeddings: bool = False,
) -> str:
    """Fit the organisation's model from corrections (+ labelled file) and store it; return its version.

    ``embeddings``: the heads read MiniLM sentence embeddings, not the static word vectors
    (the ml extra); raises ``EmbeddingsUnavailable`` with the install command when it is
    missing, before any work."""
    started = time.monotonic()
    encoder = load_encoder() if embeddings else None
    examples = _labelled(corrections, labels_file, "train")
    if not examples:
        raise ValueError("no labelled examples: correct some classifications or pass --labels FILE")
    base = BuiltinClassifier(themes)
    if encoder is not None:
        print(f"classifier train: encoding {len(examples)} comments with {encoder.name}", file=sys.stderr)
    model = train(examples, themes=base.themes, base=base, encoder=encoder)
    print(
        f"classifier train: fitted {len(model.theme_heads)} theme heads"
        f"{' and sentiment' if model.sentiment_stack else ''} in {time.monotonic() - started:.1f}s",
        file=sys.stderr,
    )
    if model.sentiment_stack is None:
        # Say why, so a team that labelled sentiment knows how many more labels it takes.
        print(
            f"classifier train: sentiment stays the built-in model's: "
            f"{model.trained_on.sentiment_examples} sentiment labels in a language it reads, a "
            f"trained sentiment needs {SENTIMENT_MIN_EXAMPLES} with {SENTIMENT_MIN_PER_CLASS} of each of "
            f"positive, neutral and negative",
            file=sys.stderr,
        )
    version = save(model, pathlib.Path(data_dir))
    print(f"classifier train: saved {version} under {pathlib.Path(data_dir) / 'classifier'}", file=sys.stderr)
    return version
