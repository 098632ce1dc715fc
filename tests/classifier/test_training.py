import json
from datetime import datetime, timezone

from services.classifier.calibration import bootstrap_win_rate, sentiment_head_helps, theme_confidence
from services.classifier.model import BuiltinClassifier, load_classifier
from services.classifier.training import LabelledExample, TrainedClassifier, features, save, train
from shared.taxonomy import DEFAULT_THEMES, ThemeDefinition

# An invented organisation whose customers talk about "the kiosk" a lot.
LABELS = [
    LabelledExample("The kiosk froze again at checkout", 3, ["performance_reliability", "kiosk"], "negative"),
    LabelledExample("Kiosk screen was unreadable in sunlight", 4, ["kiosk"], "negative"),
    LabelledExample("Loved the new kiosk, really quick", 10, ["kiosk", "performance_reliability"], "positive"),
    LabelledExample("Friendly cashier, thanks", 9, ["support_experience"], "positive"),
    LabelledExample("Cashier ignored me", 2, ["support_experience"], "negative"),
    LabelledExample("It was ok I suppose", 7, [], "neutral"),
    LabelledExample("Kiosk printed the wrong receipt", 5, ["kiosk"], "negative"),
    LabelledExample("Nothing", 10, [], "positive"),
] * 30

THEMES = DEFAULT_THEMES + [ThemeDefinition(id="kiosk", description="Self-service terminals in store")]


def test_train_save_and_load_round_trip(tmp_path):
    base = BuiltinClassifier(THEMES)
    model = train(LABELS, themes=base.themes, base=base)
    assert "kiosk" in model.theme_heads and model.sentiment_head is not None
    version = save(model, tmp_path, now=datetime(2026, 11, 23, 12, 0, tzinfo=timezone.utc))
    assert version == "trained-20261123T120000Z"
    assert (tmp_path / "classifier" / f"{version}.json").exists()
    clf = load_classifier(themes=THEMES, data_dir=tmp_path)
    assert clf.version == version
    result = clf.classify("The kiosk would not take my card", 4)
    assert result.classifier_version == version
    assert "kiosk" in {t.id for t in result.themes}


def test_load_picks_the_newest_version(tmp_path):
    base = BuiltinClassifier(THEMES)
    model = train(LABELS, themes=base.themes, base=base)
    first = save(model, tmp_path, now=datetime(2026, 1, 1, tzinfo=timezone.utc))
    second = save(model, tmp_path, now=datetime(2026, 3, 1, tzinfo=timezone.utc))
    third = save(model, tmp_path, now=datetime(2026, 3, 1, tzinfo=timezone.utc))  # same second
    assert first < second and third == second + "-1"
    assert load_classifier(themes=THEMES, data_dir=tmp_path).version == third


def test_no_stored_model_or_incompatible_model_falls_back_to_builtin(tmp_path):
    assert load_classifier(data_dir=tmp_path).version == "builtin-1.5"
    folder = tmp_path / "classifier"
    folder.mkdir()
    (folder / "trained-20300101T000000Z.json").write_text(json.dumps({"format": 999}))
    assert load_classifier(data_dir=tmp_path).version == "builtin-1.5"


def test_a_model_trained_on_an_earlier_builtin_1_x_still_loads(tmp_path):
    base = BuiltinClassifier(THEMES)
    version = save(train(LABELS, themes=base.themes, base=base), tmp_path)
    path = tmp_path / "classifier" / f"{version}.json"
    payload = json.loads(path.read_text())
    assert payload["base_version"].startswith("builtin-1.5+themes.")
    earlier = payload["base_version"].replace("builtin-1.5", "builtin-1.0")
    path.write_text(json.dumps({**payload, "base_version": earlier}))
    assert load_classifier(themes=THEMES, data_dir=tmp_path).version == version


def test_theme_added_after_training_works_zero_shot(tmp_path):
    base = BuiltinClassifier(THEMES)
    save(train(LABELS, themes=base.themes, base=base), tmp_path)
    themes = THEMES + [ThemeDefinition(id="parking_lot", description="", keywords=["parking lot"])]
    clf = load_classifier(themes=themes, data_dir=tmp_path)
    assert clf.version.startswith("trained-")
    assert "parking_lot" in {t.id for t in clf.classify("The parking lot was full", 5).themes}


def test_training_is_deterministic():
    base = BuiltinClassifier(THEMES)
    a = train(LABELS, themes=base.themes, base=base)
    b = train(LABELS, themes=base.themes, base=base)
    assert a.theme_heads == b.theme_heads and a.sentiment_head == b.sentiment_head


def test_unlabelled_aspects_are_ignored():
    base = BuiltinClassifier()
    # this organisation calls bare "fine"s neutral, which the built-in model reads as positive
    examples = [LabelledExample("Fine staff", 10, None, "neutral"),
                LabelledExample("Awful wait", 1, None, "negative")] * 30
    model = train(examples, themes=base.themes, base=base)
    assert model.theme_heads == {} and model.sentiment_head is not None


def test_a_sentiment_head_that_does_not_beat_the_built_in_one_out_of_fold_is_not_kept():
    base = BuiltinClassifier()
    examples = [LabelledExample("Great staff", 10, None, "positive"),
                LabelledExample("Awful wait", 1, None, "negative")] * 30
    model = train(examples, themes=base.themes, base=base)
    assert model.sentiment_head is None and model.trained_on["sentiment_checked"]


def test_bootstrap_win_rate_counts_resamples_where_the_challenger_is_better():
    gold = [0, 1, 2] * 100
    assert bootstrap_win_rate(gold, gold, gold) == 0.0  # a tie is not a win
    worse = [0] * 300
    assert bootstrap_win_rate(worse, gold, gold) == 1.0
    # fixes the built-in's 30 errors but makes 27 of its own: better on the whole, not reliably
    base, challenger = _trade(gold, fixed=30, broken=27)
    assert 0.5 < bootstrap_win_rate(base, challenger, gold) < 0.75
    base, challenger = _trade(gold, fixed=30, broken=0)
    assert bootstrap_win_rate(base, challenger, gold) == 1.0


def _trade(gold: list[int], *, fixed: int, broken: int) -> tuple[list[int], list[int]]:
    """Built-in labels wrong on ``fixed`` rows that a challenger gets right, the challenger wrong
    on ``broken`` other rows that the built-in gets right."""
    wrong = [(g + 1) % 3 for g in gold]
    base = [wrong[i] if i % 10 == 0 and i // 10 < fixed else g for i, g in enumerate(gold)]
    challenger = [wrong[i] if i % 10 == 5 and i // 10 < broken else g for i, g in enumerate(gold)]
    return base, challenger


def test_a_sentiment_head_that_wins_out_of_fold_by_a_hair_is_not_kept():
    # Out of fold the head is right on 3 rows more than the built-in labels of 300 (+0.01
    # macro-F1), but trading 30 fixes for 27 new errors: noise, and the bootstrap check refuses it.
    gold = [0, 1, 2] * 100
    data = [({"row": float(i)}, g) for i, g in enumerate(gold)]

    def helps(fixed: int, broken: int) -> bool:
        base, head_labels = _trade(gold, fixed=fixed, broken=broken)
        return sentiment_head_helps(data, base, fit=lambda rows: [],
                                    predict=lambda head, feats: head_labels[int(feats["row"])])

    assert not helps(30, 27)
    assert helps(30, 15)  # the same fixes with half the new errors: kept


def test_a_theme_whose_labels_do_not_beat_its_zero_shot_reading_keeps_the_built_in_one():
    base = BuiltinClassifier()
    # the lexicon already gets every one of these right; a fitted head can only tie
    examples = [LabelledExample(f"The price went up again {n}", 3, ["pricing"], "negative") for n in range(10)] + \
               [LabelledExample(f"Nice cafe {n}", 9, [], "positive") for n in range(20)]
    model = train(examples, themes=base.themes, base=base)
    assert "pricing" in model.trained_on["kept_builtin"] and "pricing" not in model.theme_heads


def test_warm_heads_scored_together_match_each_head_scored_alone():
    base = BuiltinClassifier(THEMES)
    clf = TrainedClassifier(train(LABELS, themes=base.themes, base=base), base)
    assert len(clf.heads) >= 2
    for comment, score in [("The kiosk froze and the cashier ignored me", 2), ("Loved the quick kiosk", 9)]:
        analysis = base.analyse(comment)
        feats = features(analysis, score, base.theme_ids)
        together = clf._warm_confidences(feats, analysis.theme_evidence)
        for theme_id, head in clf.heads.items():
            evidence = analysis.theme_evidence[base.theme_ids.index(theme_id)]
            alone = theme_confidence(head, feats, evidence, clf.trust[theme_id])
            assert abs(together[theme_id] - alone) < 1e-9, theme_id
