"""Measure the classifier on a labelled CSV, out of the box and after training on k rows.

    .venv/bin/python scripts/evaluate_classifier.py --dataset nhs
    .venv/bin/python scripts/evaluate_classifier.py --dataset urr --k 100,300
    .venv/bin/python scripts/evaluate_classifier.py --mapping my_map.json --csv my.csv
    .venv/bin/python scripts/evaluate_classifier.py --cross-set --tuned-on nhs --save new.json
    .venv/bin/python scripts/evaluate_classifier.py --cross-set --baseline-ref main --tuned-on nhs

A mapping file (JSON or YAML, see scripts/eval_mappings/) names the comment, score and
sentiment columns with their value maps, row filters, and how label columns map to theme
ids ("onehot": one 0/1 column per label; "values": columns holding label names). Rows
whose labels map to nothing are negatives for every mapped theme. The score is given to
the classifier as it would be in production; training uses the first k rows, testing
the rest. A mapping with "recall_only": true (airline) labels a theme only where a row
carries a mapped label; its other rows are not labelled for themes, and only recall counts.

--cross-set measures every mapping whose file is present (nhs, urr, airline), out of the box
and after training on k rows (mean of seeded shuffles, or the first k), and can save the
figures, compare them with a saved run or with the model at another git commit.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass

ROOT = pathlib.Path(__file__).resolve().parent.parent
# --baseline-ref runs this script again against another commit's code, extracted elsewhere.
CODE_ROOT = pathlib.Path(os.environ.get("NPSLOOP_EVAL_CODE_ROOT") or ROOT)
sys.path.insert(0, str(CODE_ROOT))

from npsloop.services.classifier import evaluation  # noqa: E402
from npsloop.services.classifier.active import load_classifier  # noqa: E402
from npsloop.services.classifier.embeddings import EmbeddingsUnavailable, load_encoder  # noqa: E402
from npsloop.services.classifier.model import Classifier  # noqa: E402
from npsloop.services.classifier.stored_model import save  # noqa: E402
from npsloop.services.classifier.training import LabelledExample, train  # noqa: E402

MAPPINGS = ROOT / "scripts" / "eval_mappings"
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "feedback"
SENTIMENTS = ("positive", "neutral", "negative")


@dataclass
class Row:
    id: str
    comment: str
    score: int | None
    themes: set[str] | None  # None: not labelled for themes (recall-only mappings)
    sentiment: str | None


def _norm(value: str | None) -> str:
    value = (value or "").strip()
    try:
        number = float(value)
    except ValueError:
        return value
    return str(int(number)) if number.is_integer() else value


def load_mapping(path: pathlib.Path) -> dict:
    text = path.read_text(encoding="utf-8")
    if path.suffix in (".yaml", ".yml"):
        import yaml

        return yaml.safe_load(text)
    return json.loads(text)


def load_rows(mapping: dict, csv_path: pathlib.Path) -> list[Row]:
    rows = []
    with csv_path.open(encoding=mapping.get("encoding", "utf-8"), newline="") as handle:
        for record in csv.DictReader(handle):
            if any(
                _norm(record.get(f["column"])) in {_norm(v) for v in f["values"]} for f in mapping.get("drop_rows", [])
            ):
                continue
            comment = (record.get(mapping["comment_column"]) or "").strip()
            if mapping.get("drop_empty_comment", True) and not comment:
                continue
            score = None
            if mapping.get("score"):
                score = mapping["score"]["map"].get(_norm(record.get(mapping["score"]["column"])))
            sentiment = None
            if mapping.get("sentiment"):
                sentiment = mapping["sentiment"]["map"].get(_norm(record.get(mapping["sentiment"]["column"])))
            labels = mapping["labels"]
            themes: set[str] = set()
            if labels["kind"] == "onehot":
                themes = {theme for column, theme in labels["map"].items() if _norm(record.get(column)) == "1"}
            else:
                for column in labels["columns"]:
                    theme = labels["map"].get((record.get(column) or "").strip())
                    if theme:
                        themes.add(theme)
            labelled = themes if themes or not mapping.get("recall_only") else None
            rows.append(
                Row(record.get(mapping.get("id_column", ""), str(len(rows))), comment, score, labelled, sentiment)
            )
    return rows


def mapped_themes(mapping: dict) -> list[str]:
    return sorted(set(mapping["labels"]["map"].values()))


def evaluate(classifier: Classifier, rows: list[Row], themes: list[str]) -> dict:
    """The figures of ``services.classifier.evaluation`` (as ``npsloop classifier evaluate``)."""
    encoder = getattr(classifier, "encoder", None)
    if encoder is not None and hasattr(encoder, "clear"):
        encoder.clear()  # the rate includes encoding these comments, not vectors left from an earlier run
    scores = evaluation.evaluate(classifier, rows, themes)
    return {
        "per_theme": scores.per_theme,
        "micro_f1": scores.micro_f1 or 0.0,
        "sentiment_macro_f1": scores.sentiment_macro_f1,
        "confusion": scores.confusion,
        "rate": scores.rate,
        "n": scores.n,
    }


def report(title: str, metrics: dict, detail: bool = True) -> None:
    print(f"\n== {title} (n={metrics['n']})")
    if detail:
        print(f"  {'theme':<26} {'prec':>6} {'recall':>6} {'support':>8}")
        for theme, (p, r, support) in metrics["per_theme"].items():
            print(f"  {theme:<26} {p:6.3f} {r:6.3f} {support:8d}")
    line = f"  theme micro-F1 {metrics['micro_f1']:.3f}"
    if metrics["sentiment_macro_f1"] is not None:
        line += f" | sentiment macro-F1 {metrics['sentiment_macro_f1']:.3f}"
    line += f" | {metrics['rate']:,.0f} comments/s per core"
    print(line)
    if detail and metrics["confusion"]:
        print("  sentiment confusion (rows gold, columns predicted):", " ".join(f"{s[:3]:>5}" for s in SENTIMENTS))
        for gold in SENTIMENTS:
            print(f"    {gold:<10}", " ".join(f"{metrics['confusion'][(gold, p)]:5d}" for p in SENTIMENTS))


def to_examples(rows: list[Row]) -> list[LabelledExample]:
    return [
        LabelledExample(row.comment, row.score, None if row.themes is None else sorted(row.themes), row.sentiment)
        for row in rows
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", help="name of a mapping in scripts/eval_mappings (nhs, urr)")
    parser.add_argument("--mapping", type=pathlib.Path, help="a mapping file (JSON or YAML)")
    parser.add_argument("--csv", type=pathlib.Path, help="the labelled CSV (default: the mapping's file)")
    parser.add_argument("--data-dir", type=pathlib.Path, default=DEFAULT_DATA, help="where mapped files live")
    parser.add_argument("--k", default="100,300,1000", help="training sizes for the learning curve ('' = none)")
    parser.add_argument("--errors", type=int, default=0, help="print this many misclassified rows")
    parser.add_argument(
        "--shuffles",
        type=int,
        default=0,
        help="also train on k rows of N seeded shuffles and print the mean (one split is noisy)",
    )
    parser.add_argument(
        "--embeddings",
        action="store_true",
        help="train with sentence embeddings (classifier train --embeddings; needs npsloop[ml])",
    )
    add_cross_set_arguments(parser)
    parser.add_argument(
        "--select",
        default="",
        help="compare ways of choosing which comments people label: 'queue,random' trains on --budget "
        "rows of a --pool picked by the review queue's ordering and at random (--shuffles seeds); "
        "'mixed' takes half of each, 'rounds' retrains after each third and re-ranks with that model",
    )
    parser.add_argument("--budget", type=int, default=300, help="labels chosen from the pool (--select)")
    parser.add_argument("--pool", type=int, default=1000, help="rows the labels are chosen from (--select)")
    args = parser.parse_args(argv)
    if args.cross_set or args.compare:
        return cross_set_main(args)
    encoder = None
    if args.embeddings:
        try:
            encoder = load_encoder()
        except EmbeddingsUnavailable as exc:
            print(f"evaluate_classifier --embeddings: {exc}", file=sys.stderr)
            return 2
    if not args.mapping and not args.dataset:
        parser.error("give --dataset or --mapping")
    mapping_path = args.mapping or next(MAPPINGS.glob(f"{args.dataset}.*"))
    mapping = load_mapping(mapping_path)
    csv_path = args.csv or (args.data_dir / mapping["file"])
    rows = load_rows(mapping, csv_path)
    themes = mapped_themes(mapping)
    print(
        f"{mapping.get('name', mapping_path.stem)}: {len(rows)} rows from {csv_path.name}; mapped themes: "
        f"{', '.join(themes)}"
    )
    base = load_classifier()
    if args.select:
        methods = [m.strip() for m in args.select.split(",") if m.strip()]
        if unknown := [m for m in methods if m not in SELECTIONS]:
            parser.error(f"--select: unknown {', '.join(unknown)}; choose from {', '.join(SELECTIONS)}")
        compare_selections(rows, themes, base, methods, pool=args.pool, budget=args.budget, seeds=args.shuffles or 4)
        return 0
    report(f"out of the box ({base.version}), all rows", evaluate(base, rows, themes))
    if args.errors:
        shown = 0
        for row in rows:
            result = base.classify(row.comment, row.score)
            predicted = {t.id for t in result.themes} & set(themes)
            if (row.themes is not None and predicted != row.themes) or (
                row.sentiment and row.sentiment != result.sentiment
            ):
                print(
                    f"  [{row.score}] {row.comment[:160]!r}\n      gold {sorted(row.themes)} {row.sentiment}"
                    f" | got {sorted(predicted)} {result.sentiment} {result.sentiment_score}"
                )
                shown += 1
                if shown >= args.errors:
                    break
    for k in [int(x) for x in args.k.split(",") if x.strip()]:
        if k >= len(rows):
            continue
        train_rows, test_rows = rows[:k], rows[k:]
        start = time.process_time()
        model = train(to_examples(train_rows), themes=base.themes, base=base, encoder=encoder)
        fit_seconds = time.process_time() - start
        with tempfile.TemporaryDirectory() as tmp:
            save(model, pathlib.Path(tmp))
            trained = load_classifier(data_dir=pathlib.Path(tmp))
        report(f"k={k}: out of the box on the other {len(test_rows)}", evaluate(base, test_rows, themes), False)
        report(
            f"k={k}: trained ({fit_seconds:.1f}s to fit) on the other {len(test_rows)}",
            evaluate(trained, test_rows, themes),
        )
        if args.shuffles:
            shuffled_curve(rows, themes, base, k, args.shuffles, encoder)
    return 0


def shuffled_curve(rows: list[Row], themes: list[str], base, k: int, shuffles: int, encoder=None) -> None:
    import random

    from npsloop.services.classifier.trained import TrainedClassifier

    theme_f1, sentiment_f1, builtin_theme, builtin_sentiment = [], [], [], []
    for seed in range(1, shuffles + 1):
        order = list(rows)
        random.Random(seed).shuffle(order)
        model = train(to_examples(order[:k]), themes=base.themes, base=base, encoder=encoder)
        result = evaluate(TrainedClassifier(model, base, encoder), order[k:], themes)
        theme_f1.append(result["micro_f1"])
        sentiment_f1.append(result["sentiment_macro_f1"])
        # The same held-out rows out of the box: a shuffle's rows are easier or harder for both,
        # so the gain is this difference, not the trained figure against the all-rows one.
        builtin = evaluate(base, order[k:], themes)
        builtin_theme.append(builtin["micro_f1"])
        builtin_sentiment.append(builtin["sentiment_macro_f1"])
    line = (
        f"  k={k}, {shuffles} shuffles: trained theme micro-F1 mean {sum(theme_f1) / shuffles:.3f} "
        f"({', '.join(f'{x:.3f}' for x in theme_f1)})"
    )
    if all(x is not None for x in sentiment_f1):
        line += f" | sentiment macro-F1 mean {sum(sentiment_f1) / shuffles:.3f}"
    print(line)
    line = (
        f"  k={k}, {shuffles} shuffles: out of the box on the same rows, theme micro-F1 mean "
        f"{sum(builtin_theme) / shuffles:.3f}"
    )
    if all(x is not None for x in builtin_sentiment):
        line += (
            f" | sentiment macro-F1 mean {sum(builtin_sentiment) / shuffles:.3f} (trained minus this, "
            f"per shuffle: {', '.join(f'{t - b:+.3f}' for t, b in zip(sentiment_f1, builtin_sentiment))})"
        )
    print(line)


# --- cross-set mode: every development set, before/after, so tuning on one cannot fool us ---

CROSS_SETS = ("nhs", "urr", "airline")
LOSS_TOLERANCE = 0.005  # a drop smaller than this is noise between runs, not a loss


def add_cross_set_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("cross-set mode")
    group.add_argument("--cross-set", action="store_true", help="measure on every set: " + ", ".join(CROSS_SETS))
    group.add_argument("--sets", default=",".join(CROSS_SETS), help="which mappings --cross-set measures")
    group.add_argument("--mappings-dir", type=pathlib.Path, default=MAPPINGS, help="where --sets' mappings are")
    group.add_argument("--cross-k", type=int, default=300, help="labels to train on in --cross-set (default 300)")
    group.add_argument(
        "--cross-order",
        choices=("shuffle", "first"),
        default="shuffle",
        help="train on k rows of seeded shuffles (mean over --cross-seeds; default) or on the first k rows",
    )
    group.add_argument("--cross-seeds", type=int, default=3, help="shuffles (seeds 1..N) for --cross-order shuffle")
    group.add_argument(
        "--tuned-on", default="", help="sets a change was tuned on: losses elsewhere are flagged (e.g. nhs)"
    )
    group.add_argument("--save", type=pathlib.Path, help="write the --cross-set figures as JSON")
    group.add_argument("--compare", type=pathlib.Path, help="a saved JSON run to compare with (before -> after)")
    group.add_argument(
        "--baseline-ref", help="also measure the model at this git ref (extracted to a temporary directory)"
    )


def theme_figure(metrics: dict, recall_only: bool) -> float | None:
    """Micro-F1, or micro-recall where only recall is known (labels on some rows only)."""
    if not recall_only:
        return metrics["micro_f1"]
    support = sum(s for _, _, s in metrics["per_theme"].values())
    return sum(r * s for _, r, s in metrics["per_theme"].values()) / support if support else None


def _summary(metrics: dict, recall_only: bool) -> dict:
    return {
        "theme": theme_figure(metrics, recall_only),
        "sentiment": metrics["sentiment_macro_f1"],
        "rate": round(metrics["rate"]),
        "per_theme": {t: {"precision": p, "recall": r, "support": n} for t, (p, r, n) in metrics["per_theme"].items()},
        "n": metrics["n"],
    }


def _mean(values: list) -> float | None:
    values = [v for v in values if v is not None]
    return sum(values) / len(values) if values else None


def cross_set_run(args: argparse.Namespace) -> dict:
    """Out of the box on all rows, and trained on k rows then tested on the rest, for every set."""
    import random

    from npsloop.services.classifier.trained import TrainedClassifier

    base = load_classifier()
    out: dict = {
        "builtin_version": base.version,
        "k": args.cross_k,
        "order": args.cross_order,
        "seeds": args.cross_seeds if args.cross_order == "shuffle" else 0,
        "sets": {},
    }
    for name in [x.strip() for x in args.sets.split(",") if x.strip()]:
        mapping = load_mapping(next(args.mappings_dir.glob(f"{name}.*")))
        csv_path = args.data_dir / mapping["file"]
        if not csv_path.exists():
            print(f"  {name}: {csv_path} not found, skipped", file=sys.stderr)
            continue
        rows = load_rows(mapping, csv_path)
        themes = mapped_themes(mapping)
        recall_only = bool(mapping.get("recall_only"))
        entry: dict = {"rows": len(rows), "recall_only": recall_only}
        entry["out_of_box"] = _summary(evaluate(base, rows, themes), recall_only)
        orders = (
            [rows]
            if args.cross_order == "first"
            else [random.Random(seed).sample(rows, len(rows)) for seed in range(1, args.cross_seeds + 1)]
        )
        trained_runs, builtin_runs, fit_seconds = [], [], []
        for order in orders:
            start = time.process_time()
            model = train(to_examples(order[: args.cross_k]), themes=base.themes, base=base)
            fit_seconds.append(time.process_time() - start)
            test = order[args.cross_k :]
            trained_runs.append(_summary(evaluate(TrainedClassifier(model, base), test, themes), recall_only))
            builtin_runs.append(_summary(evaluate(base, test, themes), recall_only))
        entry["trained"] = {
            "theme": _mean([r["theme"] for r in trained_runs]),
            "sentiment": _mean([r["sentiment"] for r in trained_runs]),
            "rate": round(_mean([r["rate"] for r in trained_runs]) or 0),
            "fit_seconds": round(_mean(fit_seconds) or 0.0, 1),
            "per_run": [{"theme": r["theme"], "sentiment": r["sentiment"]} for r in trained_runs],
            "per_theme": {
                t: {
                    "precision": _mean([r["per_theme"][t]["precision"] for r in trained_runs]),
                    "recall": _mean([r["per_theme"][t]["recall"] for r in trained_runs]),
                    "support": trained_runs[0]["per_theme"][t]["support"],
                }
                for t in themes
            },
        }
        entry["out_of_box_same_rows"] = {
            "theme": _mean([r["theme"] for r in builtin_runs]),
            "sentiment": _mean([r["sentiment"] for r in builtin_runs]),
        }
        out["sets"][name] = entry
    return out


def _fmt(value: float | None) -> str:
    return "   -  " if value is None else f"{value:6.3f}"


def print_cross_set(result: dict, title: str) -> None:
    order = (
        f"mean of {result['seeds']} seeded shuffles (seeds 1..{result['seeds']})"
        if result["order"] == "shuffle"
        else "the first k rows"
    )
    print(f"\n== {title}: {result['builtin_version']}; trained on k={result['k']} labels, {order}")
    for name, entry in result["sets"].items():
        box, trained = entry["out_of_box"], entry["trained"]
        metric = "micro-recall (recall-only set)" if entry["recall_only"] else "micro-F1"
        print(f"\n  {name} ({entry['rows']} rows) - themes {metric}")
        print(f"    {'theme':<26} {'prec':>6} {'recall':>6} {'support':>8}   trained: {'prec':>6} {'recall':>6}")
        for theme, pr in box["per_theme"].items():
            tpr = trained["per_theme"][theme]
            precision = "   -  " if entry["recall_only"] else _fmt(pr["precision"])
            trained_precision = "   -  " if entry["recall_only"] else _fmt(tpr["precision"])
            print(
                f"    {theme:<26} {precision} {_fmt(pr['recall'])} {pr['support']:8d}   "
                f"         {trained_precision} {_fmt(tpr['recall'])}"
            )
        print(
            f"    out of the box: themes {_fmt(box['theme'])} | sentiment {_fmt(box['sentiment'])} | "
            f"{box['rate']:,} comments/s per core"
        )
        same = entry["out_of_box_same_rows"]
        print(
            f"    trained k={result['k']}: themes {_fmt(trained['theme'])} | sentiment {_fmt(trained['sentiment'])} | "
            f"{trained['rate']:,} comments/s per core | {trained['fit_seconds']}s to fit "
            f"(out of the box on the same test rows: themes {_fmt(same['theme'])}, sentiment {_fmt(same['sentiment'])})"
        )


def compare_cross_set(old: dict, new: dict, tuned_on: set[str], old_name: str = "before") -> bool:
    """Print before -> after per set and figure; True where nothing lost on a set not tuned on."""
    print(f"\n== {old_name} -> after ({old.get('builtin_version')} -> {new.get('builtin_version')})")
    print(f"  {'set':<9} {'figure':<26} {'before':>7} {'after':>7} {'change':>7}")
    ok = True
    for name, entry in new["sets"].items():
        before = old.get("sets", {}).get(name)
        if before is None:
            continue
        rows = [
            ("themes out of the box", before["out_of_box"]["theme"], entry["out_of_box"]["theme"]),
            ("sentiment out of the box", before["out_of_box"]["sentiment"], entry["out_of_box"]["sentiment"]),
            (f"themes k={new['k']}", before["trained"]["theme"], entry["trained"]["theme"]),
            (f"sentiment k={new['k']}", before["trained"]["sentiment"], entry["trained"]["sentiment"]),
        ]
        for label, b, a in rows:
            if b is None or a is None:
                continue
            flag = ""
            if a < b - LOSS_TOLERANCE:
                flag = "  (tuned on this set)" if name in tuned_on else "  LOSS on a set not tuned on"
                ok = ok and name in tuned_on
            print(f"  {name:<9} {label:<26} {b:7.3f} {a:7.3f} {a - b:+7.3f}{flag}")
    print("  verdict:", "no loss on the sets not tuned on" if ok else "LOSES on a set it was not tuned on")
    return ok


def baseline_at(ref: str, args: argparse.Namespace) -> dict:
    """The --cross-set figures of the code at git ``ref``, measured by this script."""
    with tempfile.TemporaryDirectory(prefix="npsloop-baseline-") as tmp:
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", ref], check=True, capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", tmp], input=archive, check=True)
        saved = pathlib.Path(tmp) / "baseline.json"
        command = [sys.executable, str(pathlib.Path(__file__).resolve()), "--cross-set", "--save", str(saved)]
        command += ["--sets", args.sets, "--cross-k", str(args.cross_k), "--cross-order", args.cross_order]
        command += ["--cross-seeds", str(args.cross_seeds), "--data-dir", str(args.data_dir)]
        command += ["--mappings-dir", str(args.mappings_dir)]
        subprocess.run(command, check=True, env={**os.environ, "NPSLOOP_EVAL_CODE_ROOT": tmp})
        return json.loads(saved.read_text())


def cross_set_main(args: argparse.Namespace) -> int:
    tuned_on = {x.strip() for x in args.tuned_on.split(",") if x.strip()}
    if not args.cross_set:  # --compare alone: compare the saved run with a fresh one
        args.cross_set = True
    result = cross_set_run(args)
    result["code"] = str(CODE_ROOT)
    print_cross_set(result, "after" if (args.compare or args.baseline_ref) else "cross-set")
    if args.save:
        args.save.write_text(json.dumps(result, indent=1))
    ok = True
    if args.baseline_ref:
        old = baseline_at(args.baseline_ref, args)
        print_cross_set(old, f"before ({args.baseline_ref})")
        ok = compare_cross_set(old, result, tuned_on, f"before ({args.baseline_ref})") and ok
    if args.compare:
        ok = compare_cross_set(json.loads(args.compare.read_text()), result, tuned_on, str(args.compare)) and ok
    if tuned_on:
        print(f"  tuned on: {', '.join(sorted(tuned_on))}; figures on the other sets are the ones to quote")
    return 0 if ok else 1


SELECTIONS = ("queue", "random", "mixed", "rounds")
ROUNDS = 3


def select_rows(method: str, pool: list[Row], budget: int, classifier, seed: int) -> list[Row]:
    """``budget`` rows of ``pool`` to label.

    ``queue``: the review queue's first (``services.classifier.review``, read by ``classifier``
    as the endpoint would); ``random``: a seeded sample; ``mixed``: half of each; ``rounds``:
    the queue in ``ROUNDS`` batches, retraining after each and ranking the rest with the new
    model (the loop ``NPSLOOP_CLASSIFIER_RETRAIN_AFTER_CORRECTIONS`` runs)."""
    import random

    rng = random.Random(seed)
    if method == "random":
        return rng.sample(pool, min(budget, len(pool)))
    if method == "mixed":
        chosen = _queue_first(pool, budget // 2, classifier, rng)
        taken = {row.id for row in chosen}
        rest = [row for row in pool if row.id not in taken]
        return chosen + rng.sample(rest, min(budget - len(chosen), len(rest)))
    if method == "rounds":
        from npsloop.services.classifier.trained import TrainedClassifier

        base = getattr(classifier, "base", classifier)
        chosen, reader = [], classifier
        for step in range(ROUNDS):
            size = budget * (step + 1) // ROUNDS - len(chosen)
            taken = {row.id for row in chosen}
            chosen += _queue_first([row for row in pool if row.id not in taken], size, reader, rng)
            if step < ROUNDS - 1:
                reader = TrainedClassifier(train(to_examples(chosen), themes=base.themes, base=base), base)
        return chosen
    return _queue_first(pool, budget, classifier, rng)


def _queue_first(pool: list[Row], budget: int, classifier, rng) -> list[Row]:
    from npsloop.services.classifier import review

    by_id = {row.id: row for row in pool}
    ranked = review.rank(classifier, [review.Candidate(row.id, row.comment, row.score) for row in pool])
    chosen = [by_id[candidate.id] for candidate, _ in ranked[:budget]]
    if len(chosen) < budget:  # the queue ran dry (everything sure of itself): the rest at random
        taken = {row.id for row in chosen}
        rest = [row for row in pool if row.id not in taken]
        chosen += rng.sample(rest, min(budget - len(chosen), len(rest)))
    return chosen


def compare_selections(
    rows: list[Row], themes: list[str], base, methods: list[str], *, pool: int, budget: int, seeds: int
) -> None:
    """Per seed: shuffle, take a pool of ``pool`` rows, choose ``budget`` of them by each method,
    train on those, test every method on the same rows outside the pool; print per-seed figures
    and the means (paired: the same test rows for every method)."""
    import random

    from npsloop.services.classifier.trained import TrainedClassifier

    figures: dict[str, list[tuple[float, float | None, dict]]] = {m: [] for m in methods}
    builtin: list[tuple[float, float | None]] = []
    print(f"\n== {budget} labels chosen from a pool of {pool}, tested on the other {len(rows) - pool}, {seeds} seeds")
    for seed in range(1, seeds + 1):
        order = list(rows)
        random.Random(seed).shuffle(order)
        pool_rows, test_rows = order[:pool], order[pool:]
        out = evaluate(base, test_rows, themes)
        builtin.append((out["micro_f1"], out["sentiment_macro_f1"]))
        for method in methods:
            chosen = select_rows(method, pool_rows, budget, base, seed)
            model = train(to_examples(chosen), themes=base.themes, base=base)
            result = evaluate(TrainedClassifier(model, base), test_rows, themes)
            positives = {t: sum(1 for row in chosen if t in (row.themes or ())) for t in themes}
            figures[method].append((result["micro_f1"], result["sentiment_macro_f1"], positives))
            sentiment = result["sentiment_macro_f1"]
            print(
                f"  seed {seed} {method:<7} theme micro-F1 {result['micro_f1']:.3f}"
                + (f" | sentiment macro-F1 {sentiment:.3f}" if sentiment is not None else "")
                + f" | labelled positives {sum(positives.values())}"
            )

    def mean(values: list) -> str:
        known = [v for v in values if v is not None]
        return f"{sum(known) / len(known):.3f}" if known and len(known) == len(values) else "n/a"

    print(
        f"  out of the box       theme micro-F1 {mean([b[0] for b in builtin])}"
        f" | sentiment macro-F1 {mean([b[1] for b in builtin])}"
    )
    for method in methods:
        runs = figures[method]
        per_theme = {t: sum(r[2][t] for r in runs) / len(runs) for t in themes}
        print(
            f"  mean {method:<15} theme micro-F1 {mean([r[0] for r in runs])}"
            f" | sentiment macro-F1 {mean([r[1] for r in runs])}"
            f" | positives per theme in the labels: " + ", ".join(f"{t} {n:.0f}" for t, n in per_theme.items())
        )


if __name__ == "__main__":
    raise SystemExit(main())
