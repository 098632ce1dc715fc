"""Scoring labelled comments, and cross-validating training on an organisation's own labels."""

from __future__ import annotations

import random

import pytest

from npsloop.services.classifier.evaluation import check_folds, cross_validate, score
from npsloop.services.classifier.model import BuiltinClassifier, Classification, ThemeScore
from npsloop.services.classifier.training import LabelledExample


def tagged(themes: set[str], sentiment: str = "neutral") -> Classification:
    return Classification(None, tuple(ThemeScore(t, 0.9) for t in sorted(themes)), sentiment, 0.0, "en", "v")


def test_score_counts_only_what_each_comment_is_labelled_for():
    pairs = [
        (LabelledExample("a", 9, ["pricing"], "positive"), tagged({"pricing"}, "positive")),  # pricing TP
        (LabelledExample("b", 2, ["pricing", "ease_of_use"], None), tagged({"pricing"}, "negative")),  # ease FN
        (LabelledExample("c", 6, [], "neutral"), tagged({"ease_of_use"}, "negative")),  # ease FP
        # not labelled for themes: its predicted theme is neither right nor wrong
        (LabelledExample("d", 10, None, "positive"), tagged({"ease_of_use"}, "positive")),
    ]
    scores = score(pairs, ["ease_of_use", "pricing"])
    assert scores.per_theme["pricing"] == (1.0, 1.0, 2)
    assert scores.per_theme["ease_of_use"] == (0.0, 0.0, 1)
    assert scores.micro_f1 == pytest.approx(2 * 2 / (2 * 2 + 1 + 1))
    # sentiment over a, c and d only: positive 2 of 2 (F1 1), neutral 0 of 1 gold, negative 0 of 1 predicted
    assert scores.sentiment_macro_f1 == pytest.approx(1 / 3)
    assert score(pairs[3:], ["pricing"]).micro_f1 is None
    assert score(pairs[1:2], ["pricing"]).sentiment_macro_f1 is None


def invented_labels(n: int = 60) -> list[LabelledExample]:
    """Comments about things the built-in lexicon has never heard of: a "zorblax" that
    wobbles is this organisation's reliability problem, a "quimby" is nothing in particular."""
    rng = random.Random(3)
    examples = []
    for i in range(n):
        if i % 2:
            text = rng.choice(["The zorblax wobbled again", "My zorblax keeps wobbling", "zorblax wobbles daily"])
            examples.append(
                LabelledExample(f"{text} ({i})", rng.randint(0, 6), ["performance_reliability"], "negative")
            )
        else:
            text = rng.choice(["I liked the quimby", "The quimby was lovely", "quimby is a delight"])
            examples.append(LabelledExample(f"{text} ({i})", rng.randint(9, 10), [], "positive"))
    return examples


def test_cross_validation_scores_every_label_once_out_of_fold():
    examples = invented_labels()
    calls = []
    result = cross_validate(
        examples,
        base=BuiltinClassifier(),
        folds=4,
        progress=lambda fold, folds, trained_on, seconds: calls.append((fold, folds, trained_on)),
    )
    assert calls == [(1, 4, 45), (2, 4, 45), (3, 4, 45), (4, 4, 45)]
    assert result.trained.n == result.builtin.n == len(examples)
    assert result.trained.per_theme["performance_reliability"][2] == 30  # every positive held out exactly once
    # the built-in model cannot know what a zorblax is; trained on the other folds, the model does
    assert result.builtin.micro_f1 < 0.2
    assert result.trained.micro_f1 > 0.9
    assert result.trained.micro_f1 > result.builtin.micro_f1


@pytest.mark.parametrize(
    "n, folds, message", [(9, 2, "too few"), (100, 1, "between 2 and 20"), (100, 21, "between 2 and 20")]
)
def test_folds_that_cannot_be_made_are_refused(n, folds, message):
    with pytest.raises(ValueError, match=message):
        check_folds(n, folds)
