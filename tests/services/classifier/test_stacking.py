"""The stacked theme heads: learnt from an organisation's labels, stored, and used."""

import json
import math
import random

import pytest

from npsloop.services.classifier.active import load_classifier
from npsloop.services.classifier.features import features
from npsloop.services.classifier.model import BuiltinClassifier
from npsloop.services.classifier.stacking import StackedHeads, _char_row, char_terms, fit_stack
from npsloop.services.classifier.stored_model import StoredModelError, ThemeStack, save
from npsloop.services.classifier.trained import TrainedClassifier
from npsloop.services.classifier.training import LabelledExample, train

# words no built-in theme reads
FILLER = [
    "morning",
    "afternoon",
    "today",
    "yesterday",
    "room",
    "desk",
    "floor",
    "window",
    "chair",
    "card",
    "door",
    "hallway",
    "corner",
    "table",
    "lamp",
    "wall",
    "garden",
    "carpet",
    "ceiling",
    "curtain",
]


def comments(rng: random.Random, n: int, cue: str | None) -> list[str]:
    """Invented comments; ``cue`` (a word the lexicon does not know) appears in each when given."""
    out = []
    for _ in range(n):
        words = rng.sample(FILLER, 4)
        if cue:
            words.insert(rng.randrange(len(words) + 1), cue)
        out.append("The " + " ".join(words) + ".")
    return out


def organisation(seed: int = 1) -> list[LabelledExample]:
    """An organisation whose customers say "tannoy" when they mean its announcements."""
    rng = random.Random(seed)
    # scores drawn alike for both groups, so that only the word tells them apart
    examples = [
        LabelledExample(c, rng.randint(0, 10), ["onboarding_communication"], None) for c in comments(rng, 40, "tannoy")
    ]
    examples += [LabelledExample(c, rng.randint(0, 10), [], None) for c in comments(rng, 120, None)]
    rng.shuffle(examples)
    return examples


def test_a_cue_the_lexicon_does_not_know_is_learnt_from_labels():
    base = BuiltinClassifier()
    examples = organisation()
    assert all(
        "onboarding_communication" not in {t.id for t in base.classify(e.comment, e.score).themes} for e in examples
    )  # the built-in model cannot see it
    model = train(examples, themes=base.themes, base=base)
    stack = model.theme_stack
    assert stack is not None
    head = stack.heads["onboarding_communication"]
    column = 1 + stack.columns.index("onboarding_communication")  # after the idf
    assert head.blend > 0 and stack.vocab["word"]["w:tannoy"][column] > 0
    assert stack.vocab["char"]["tann"][column] > 0  # 4-grams
    clf = TrainedClassifier(model, base)
    rng = random.Random(99)  # fresh comments, not the training ones
    assert all(
        "onboarding_communication" in {t.id for t in clf.classify(c, 5).themes} for c in comments(rng, 20, "tannoy")
    )
    assert not any(
        "onboarding_communication" in {t.id for t in clf.classify(c, 5).themes} for c in comments(rng, 20, None)
    )


def test_threshold_is_half_the_out_of_fold_f1_and_themes_without_labels_get_no_head():
    base = BuiltinClassifier()
    rows = organisation()
    analyses = [base.analyse(e.comment) for e in rows]
    stack = fit_stack(
        [features(a, e.score, base.theme_ids) for a, e in zip(analyses, rows)],
        [e.comment for e in rows],
        [set(e.themes) for e in rows],
        [a.theme_evidence for a in analyses],
        list(base.theme_ids),
    )
    assert set(stack.heads) == {"onboarding_communication"}  # no other theme has a positive label
    assert 0.05 <= stack.threshold <= 0.5  # F1 <= 1, so F1 / 2 <= 0.5


def test_stored_stack_round_trips(tmp_path):
    base = BuiltinClassifier()
    model = train(organisation(), themes=base.themes, base=base)
    version = save(model, tmp_path)
    clf = load_classifier(data_dir=tmp_path)
    assert isinstance(clf, TrainedClassifier)
    assert clf.version == version and clf.model.theme_stack == model.theme_stack
    assert "onboarding_communication" in {t.id for t in clf.classify("The tannoy desk chair.", 5).themes}


def test_a_model_stored_before_stacking_is_refused(tmp_path):
    base = BuiltinClassifier()
    version = save(train(organisation(), themes=base.themes, base=base), tmp_path)
    path = tmp_path / "classifier" / f"{version}.json"
    payload = json.loads(path.read_text())
    del payload["theme_stack"]  # warm-started heads only, as stored before stacking existed
    payload["theme_heads"] = {"onboarding_communication": {"": -1.04, "lex:onboarding_communication": 1.5}}
    path.write_text(json.dumps(payload))
    with pytest.raises(StoredModelError, match=r"no theme_stack .*npsloop classifier train"):
        load_classifier(data_dir=tmp_path)


def test_training_with_stacking_is_deterministic():
    base = BuiltinClassifier()
    a = train(organisation(), themes=base.themes, base=base)
    b = train(organisation(), themes=base.themes, base=base)
    assert a.theme_stack is not None and a.theme_stack == b.theme_stack


def test_character_ngrams_carry_a_cue_to_a_word_never_seen_in_training():
    base = BuiltinClassifier()
    clf = TrainedClassifier(train(organisation(), themes=base.themes, base=base), base)
    # "tannoys" and "supertannoy" are other stems than "tannoy": only their n-grams are known
    for unseen in ("The supertannoy desk chair.", "The tannoys desk chair."):
        assert "onboarding_communication" in {t.id for t in clf.classify(unseen, 5).themes}, unseen
    assert "onboarding_communication" not in {t.id for t in clf.classify("The supermarket desk chair.", 5).themes}


def test_inference_weighs_words_and_ngrams_as_described():
    """Binary word TF times idf to unit length; n-gram counts times idf per word, summed and
    divided by the root of the words' summed squares; meta features as they are."""
    stack = {
        "format": 2,
        "threshold": 0.4,
        "columns": ["pricing"],
        "heads": {"pricing": {"C": 3.0, "blend": 1.0, "bias": -0.5}},
        "vocab": {
            "word": {"w:cost": [2.0, 1.5], "w:other": [1.0, 0.0]},
            "char": {"ost ": [1.2, 0.8], "cost": [1.0, -0.4], " cos": [3.0, 0.0]},
            "meta": {"lex:pricing": [2.0], "prior": [0.5]},
        },
    }
    heads = StackedHeads(ThemeStack.model_validate(stack))
    feats = {"w:cost": 1.0, "w:unknown": 1.0, "prior": -0.6}
    assert char_terms("cost ost")["ost "] == 2 and char_terms("cost ost")["cost"] == 1
    theme_ids = BuiltinClassifier().theme_ids
    fitted = heads.fitted_probabilities(feats, "Cost ost", [0.0] * len(theme_ids), theme_ids)
    word = 1.5  # one known word: unit length, weight 1.5
    # "cost" brings "ost ", "cost" and " cos"; "ost" brings "ost " again
    energy = 1.2**2 + 1.0**2 + 3.0**2 + 1.2**2
    z = -0.5 + word + (2 * 1.2 * 0.8 - 1.0 * 0.4) / math.sqrt(energy) + 0.5 * -0.6
    assert math.isclose(fitted["pricing"], 1 / (1 + math.exp(-z)), rel_tol=1e-9)
    # the same numbers as the training side computes for that comment
    row = _char_row("Cost ost", {"ost ": 1.2, "cost": 1.0, " cos": 3.0})
    assert math.isclose(row["ost "] * 0.8 - row["cost"] * 0.4, (2 * 1.2 * 0.8 - 0.4) / math.sqrt(energy))


def test_a_stack_stored_in_the_first_format_is_refused_naming_it(tmp_path):
    base = BuiltinClassifier()
    version = save(train(organisation(), themes=base.themes, base=base), tmp_path)
    path = tmp_path / "classifier" / f"{version}.json"
    payload = json.loads(path.read_text())
    # the first format had no "format" key: raw word/meta weights per head, no TF-IDF blocks
    payload["theme_stack"] = {
        "threshold": 0.4,
        "theme_ids": list(base.theme_ids),
        "heads": {"onboarding_communication": {"C": 1.0, "blend": 1.0, "bias": -3.0, "weights": {"w:tannoy": 6.0}}},
    }
    path.write_text(json.dumps(payload))
    with pytest.raises(StoredModelError, match=r"theme_stack format 1; .*reads theme_stack format 2: run `npsloop"):
        load_classifier(data_dir=tmp_path)


def test_naive_bayes_scaling_favours_words_that_separate_the_theme_and_folds_into_the_weights():
    import numpy as np
    from scipy.sparse import csr_matrix
    from sklearn.linear_model import LogisticRegression

    from npsloop.services.classifier.stacking import _NaiveBayesLogistic, nb_ratios

    rng = random.Random(3)
    y = np.array([i % 3 == 0 for i in range(60)], dtype=int)
    # column 0: only in positives; column 1: everywhere alike; column 2: a meta reading
    X = csr_matrix([[float(label), 1.0, rng.uniform(-1, 1)] for label in y])
    text = np.array([True, True, False])
    scale = nb_ratios(X, y, text)
    assert scale[0] > scale[1] and scale[2] == 1.0
    assert math.isclose(scale[text].mean(), 1.0)
    head = _NaiveBayesLogistic(LogisticRegression(C=3.0, solver="liblinear"), text).fit(X, y)
    # the stored weights are per unscaled feature: the plain linear score gives the same probabilities
    z = X @ head.coef_[0] + head.intercept_[0]
    assert np.allclose(head.predict_proba(X)[:, 1], 1 / (1 + np.exp(-z)))


def test_a_rare_theme_positives_weigh_as_much_as_its_negatives(monkeypatch):
    import numpy as np
    from scipy.sparse import csr_matrix
    from sklearn.linear_model import LogisticRegression

    from npsloop.services.classifier import stacking

    y = np.array([1] * 5 + [0] * 95)
    assert stacking.positive_weight(y) == {0: 1.0, 1: 19.0}  # 5 x 19 = 95
    assert stacking.positive_weight(np.zeros(4, dtype=int)) == {0: 1.0, 1: 4.0}  # no division by zero
    # a word in 2 of the 5 positives and in 6 of the 95 negatives, and a word every comment has
    X = csr_matrix([[1.0 if i in (0, 1, 20, 30, 40, 50, 60, 70) else 0.0, 1.0] for i in range(100)])
    text = np.array([True, True])
    cue = csr_matrix([[1.0, 1.0]])

    def cue_probability() -> float:
        head = stacking._NaiveBayesLogistic(LogisticRegression(C=3.0, solver="liblinear"), text).fit(X, y)
        return head.predict_proba(cue)[0, 1]

    weighted = cue_probability()
    monkeypatch.setattr(stacking, "positive_weight", lambda y: None)
    # unweighted, the fit leans to "no" even for comments with the word; weighted, it does not
    assert cue_probability() < 0.5 < weighted
