"""The evaluation scripts: their figures are computed as stated, and they run end to end."""

from __future__ import annotations

import csv
import json
import pathlib
import random
import sys

import pytest

from npsloop.services.classifier.model import Classification, Classifier, ThemeScore, category_for_score

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[3] / "scripts"))
import evaluate_classifier as ev


class Fixed:
    """A classifier that answers from a table: the figures it earns are known in advance."""

    version = "fixed"
    prepares_batches = False

    def __init__(self, answers: dict[str, tuple[set[str], str]]) -> None:
        self.answers = answers

    def prepare(self, comments) -> None:
        pass

    def classify(self, comment, score) -> Classification:
        themes, sentiment = self.answers[comment]
        return Classification(
            category_for_score(score),
            tuple(ThemeScore(t, 0.9) for t in sorted(themes)),
            sentiment,
            0.0,
            "en",
            self.version,
        )


def test_evaluate_counts_per_theme_precision_recall_micro_f1_and_macro_f1():
    rows = [
        ev.Row("1", "a", 10, {"pricing"}, "positive"),
        ev.Row("2", "b", 0, {"pricing", "ease_of_use"}, "negative"),
        ev.Row("3", "c", 5, set(), "neutral"),
        ev.Row("4", "d", 9, {"ease_of_use"}, "positive"),
    ]
    answers = {
        "a": ({"pricing"}, "positive"),  # pricing TP
        "b": ({"pricing"}, "neutral"),  # pricing TP, ease_of_use FN
        "c": ({"ease_of_use", "other"}, "neutral"),  # ease_of_use FP; "other" is not a mapped theme
        "d": ({"ease_of_use"}, "negative"),
    }  # ease_of_use TP
    metrics = ev.evaluate(Fixed(answers), rows, ["ease_of_use", "pricing"])
    assert metrics["per_theme"]["pricing"] == (1.0, 1.0, 2)
    assert metrics["per_theme"]["ease_of_use"] == (0.5, 0.5, 2)
    assert metrics["micro_f1"] == pytest.approx(2 * 3 / (2 * 3 + 1 + 1))
    # positive: 1 right of 1 predicted, 2 gold -> 2/3; neutral: 1 of 2, 1 gold -> 2/3; negative: 0
    assert metrics["sentiment_macro_f1"] == pytest.approx((2 / 3 + 2 / 3 + 0) / 3)
    assert metrics["n"] == 4 and metrics["rate"] > 0


def invented_survey(path, n: int = 90) -> None:
    """A labelled CSV in a layout of its own: label names in two columns, stars for the score."""
    rng = random.Random(7)
    subjects = {
        "PRICE": ["the price", "the monthly fee", "what it costs"],
        "SPEED": ["the loading time", "how slow it is", "the lag"],
        "": ["the colour scheme", "my cousin", "the weather"],
    }
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["ref", "text", "stars", "label_a", "label_b", "mood"])
        for i in range(n):
            first, second = rng.sample(list(subjects), 2)
            stars = rng.randint(1, 5)
            text = f"I keep thinking about {rng.choice(subjects[first])} and {rng.choice(subjects[second])}."
            writer.writerow([f"r{i}", text, stars, first, second, "pos" if stars >= 4 else "neg"])


def test_evaluate_script_scores_any_labelled_csv_through_a_mapping(tmp_path, capsys):
    invented_survey(tmp_path / "survey.csv")
    mapping = {
        "name": "invented",
        "file": "survey.csv",
        "id_column": "ref",
        "comment_column": "text",
        "score": {"column": "stars", "map": {"5": 10, "4": 8, "3": 6, "2": 3, "1": 0}},
        "sentiment": {"column": "mood", "map": {"pos": "positive", "neg": "negative"}},
        "labels": {
            "kind": "values",
            "columns": ["label_a", "label_b"],
            "map": {"PRICE": "pricing", "SPEED": "performance_reliability"},
        },
    }
    (tmp_path / "map.json").write_text(json.dumps(mapping))
    assert (
        ev.main(["--mapping", str(tmp_path / "map.json"), "--data-dir", str(tmp_path), "--k", "40", "--shuffles", "2"])
        == 0
    )
    out = capsys.readouterr().out
    assert "invented: 90 rows from survey.csv; mapped themes: performance_reliability, pricing" in out
    assert "== out of the box" in out and "== k=40: trained" in out and "k=40, 2 shuffles" in out
    for line in ("pricing", "performance_reliability"):
        assert any(row.split()[:1] == [line] and len(row.split()) == 4 for row in out.splitlines())
    assert "theme micro-F1" in out and "sentiment macro-F1" in out and "comments/s per core" in out


def test_the_ml_comparison_scores_its_variants_as_classifiers():
    import compare_ml_extra as compare  # imports without the [ml] packages: a broken import must fail

    rows = [ev.Row("1", "Too expensive", 3, {"pricing"}, "negative")]
    results = [Classification("detractor", (ThemeScore("pricing", 0.8),), "negative", -0.6, "en", "v")]
    predicted = compare.Predicted("v", rows, results)
    assert isinstance(predicted, Classifier)
    metrics = ev.evaluate(predicted, rows, ["pricing"])
    assert metrics["micro_f1"] == 1.0 and metrics["sentiment_macro_f1"] == pytest.approx(1 / 3)


def _cross_set_mappings(tmp_path) -> None:
    """Two invented surveys: one labelled for every theme, one recall-only (labels on some rows)."""
    invented_survey(tmp_path / "survey.csv")
    invented_survey(tmp_path / "other.csv", n=80)
    labels = {
        "kind": "values",
        "columns": ["label_a", "label_b"],
        "map": {"PRICE": "pricing", "SPEED": "performance_reliability"},
    }
    sentiment = {"column": "mood", "map": {"pos": "positive", "neg": "negative"}}
    full = {"file": "survey.csv", "comment_column": "text", "sentiment": sentiment, "labels": labels}
    # Only PRICE is mapped here: a row naming SPEED and nothing else carries no mapped label.
    partial_labels = {**labels, "map": {"PRICE": "pricing"}}
    partial = {**full, "file": "other.csv", "score": None, "recall_only": True, "labels": partial_labels}
    full["score"] = {"column": "stars", "map": {"5": 10, "4": 8, "3": 6, "2": 3, "1": 0}}
    (tmp_path / "full.json").write_text(json.dumps(full))
    (tmp_path / "partial.json").write_text(json.dumps(partial))


def test_recall_only_mapping_leaves_rows_without_a_mapped_label_unlabelled(tmp_path):
    _cross_set_mappings(tmp_path)
    mapping = ev.load_mapping(tmp_path / "partial.json")
    rows = ev.load_rows(mapping, tmp_path / "other.csv")
    assert any(row.themes is None for row in rows) and all(row.themes is None or row.themes for row in rows)
    assert all(row.score is None for row in rows)
    metrics = {"per_theme": {"pricing": (0.2, 0.5, 10), "ease_of_use": (0.9, 1.0, 30)}, "micro_f1": 0.4}
    assert ev.theme_figure(metrics, recall_only=True) == pytest.approx((0.5 * 10 + 1.0 * 30) / 40)
    assert ev.theme_figure(metrics, recall_only=False) == 0.4


def test_cross_set_measures_every_set_saves_and_compares(tmp_path, capsys):
    _cross_set_mappings(tmp_path)
    common = ["--sets", "full,partial", "--mappings-dir", str(tmp_path), "--data-dir", str(tmp_path)]
    common += ["--cross-k", "40", "--cross-seeds", "2"]
    saved = tmp_path / "run.json"
    assert ev.main(["--cross-set", *common, "--save", str(saved)]) == 0
    out = capsys.readouterr().out
    assert "mean of 2 seeded shuffles" in out
    assert "full (90 rows) - themes micro-F1" in out and "partial (80 rows) - themes micro-recall" in out
    assert "trained k=40" in out
    run = json.loads(saved.read_text())
    assert set(run["sets"]) == {"full", "partial"} and run["sets"]["partial"]["recall_only"]
    assert len(run["sets"]["full"]["trained"]["per_run"]) == 2
    # The same code against its own saved figures: nothing lost.
    assert ev.main([*common, "--compare", str(saved), "--tuned-on", "full"]) == 0
    assert "no loss on the sets not tuned on" in capsys.readouterr().out
    # A saved run that was better on a set not tuned on: the comparison says so and fails.
    better = json.loads(saved.read_text())
    better["sets"]["partial"]["out_of_box"]["sentiment"] = 1.0
    better["sets"]["full"]["out_of_box"]["sentiment"] = 1.0
    assert not ev.compare_cross_set(better, run, {"full"})
    out = capsys.readouterr().out
    assert "LOSS on a set not tuned on" in out and "(tuned on this set)" in out


def test_select_queue_takes_the_rows_the_review_queue_ranks_first_and_random_is_seeded():
    from npsloop.services.classifier import review
    from npsloop.services.classifier.model import BuiltinClassifier

    base = BuiltinClassifier()
    # Invented comments: praise from a detractor leads the queue, a plain thank-you is not in it.
    pool = [
        ev.Row("sure", "Excellent, really happy", 10, set(), "positive"),
        ev.Row("against", "Wonderful people, brilliant and lovely, thank you so much", 2, set(), "positive"),
        ev.Row("unsure", "Reports could load faster", 8, {"performance_reliability"}, "neutral"),
        ev.Row("empty", "n/a", 5, set(), "neutral"),
    ]
    chosen = ev.select_rows("queue", pool, 2, base, seed=1)
    ranked = review.rank(base, [review.Candidate(r.id, r.comment, r.score) for r in pool])
    assert [r.id for r in chosen] == [c.id for c, _ in ranked[:2]] and chosen[0].id == "against"
    # More labels than the queue holds: the rest come at random, none twice.
    everything = ev.select_rows("queue", pool, 4, base, seed=1)
    assert sorted(r.id for r in everything) == sorted(r.id for r in pool)
    assert [r.id for r in ev.select_rows("random", pool, 2, base, seed=3)] == [
        r.id for r in ev.select_rows("random", pool, 2, base, seed=3)
    ]
