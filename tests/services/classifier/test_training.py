import json
from datetime import UTC, datetime

import pytest

from npsloop.services.classifier.active import load_classifier
from npsloop.services.classifier.calibration import theme_confidence
from npsloop.services.classifier.features import features
from npsloop.services.classifier.model import BuiltinClassifier
from npsloop.services.classifier.stored_model import StoredModelError, save
from npsloop.services.classifier.trained import TrainedClassifier
from npsloop.services.classifier.training import LabelledExample, train
from npsloop.shared.taxonomy import DEFAULT_THEMES, ThemeDefinition

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
    assert "kiosk" in model.theme_heads and model.sentiment_stack is not None
    version = save(model, tmp_path, now=datetime(2026, 11, 23, 12, 0, tzinfo=UTC))
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
    first = save(model, tmp_path, now=datetime(2026, 1, 1, tzinfo=UTC))
    second = save(model, tmp_path, now=datetime(2026, 3, 1, tzinfo=UTC))
    third = save(model, tmp_path, now=datetime(2026, 3, 1, tzinfo=UTC))  # same second
    assert first < second and third == second + "-1"
    assert load_classifier(themes=THEMES, data_dir=tmp_path).version == third


def test_no_stored_model_falls_back_to_builtin(tmp_path):
    assert load_classifier(data_dir=tmp_path).version == "builtin-1.8"
    (tmp_path / "classifier").mkdir()
    assert load_classifier(data_dir=tmp_path).version == "builtin-1.8"


def test_a_newest_model_in_another_format_is_refused_with_the_format_and_what_to_do(tmp_path):
    base = BuiltinClassifier(THEMES)
    save(train(LABELS, themes=base.themes, base=base), tmp_path, now=datetime(2026, 1, 1, tzinfo=UTC))
    (tmp_path / "classifier" / "trained-20300101T000000Z.json").write_text(json.dumps({"format": 999}))
    # not silently the older model or the built-in one: the operator would think it applied
    with pytest.raises(
        StoredModelError,
        match=r"trained-20300101T000000Z\.json is in format 999; .*reads format 1: "
        r"run `npsloop classifier train` again",
    ):
        load_classifier(themes=THEMES, data_dir=tmp_path)


def test_a_model_whose_content_does_not_fit_its_format_is_refused_naming_the_field(tmp_path):
    base = BuiltinClassifier(THEMES)
    version = save(train(LABELS, themes=base.themes, base=base), tmp_path)
    path = tmp_path / "classifier" / f"{version}.json"
    payload = json.loads(path.read_text())
    payload["trained_on"]["theme_examples"] = "many"
    path.write_text(json.dumps(payload))
    with pytest.raises(
        StoredModelError, match=r"does not fit format 1 \(trained_on\.theme_examples: .*npsloop classifier train"
    ):
        load_classifier(themes=THEMES, data_dir=tmp_path)


def test_a_model_trained_on_an_earlier_builtin_1_x_still_loads(tmp_path):
    base = BuiltinClassifier(THEMES)
    version = save(train(LABELS, themes=base.themes, base=base), tmp_path)
    path = tmp_path / "classifier" / f"{version}.json"
    payload = json.loads(path.read_text())
    assert payload["base_version"].startswith("builtin-1.8+themes.")
    earlier = payload["base_version"].replace("builtin-1.8", "builtin-1.0")
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
    assert a.theme_heads == b.theme_heads and a.sentiment_stack == b.sentiment_stack


def test_unlabelled_aspects_are_ignored():
    base = BuiltinClassifier()
    examples = [
        LabelledExample("Fine staff", 10, None, "neutral"),
        LabelledExample("Awful wait", 1, None, "negative"),
        LabelledExample("Lovely visit", 9, None, "positive"),
    ] * 70
    model = train(examples, themes=base.themes, base=base)
    assert model.theme_heads == {} and model.sentiment_stack is not None


# This organisation calls a bare "fine" neutral even beside a 10; the built-in model reads it as
# positive. Around it, comments the built-in model already reads as the labels do.
HOUSE_STYLE = (
    [LabelledExample(f"Fine {noun}", 10, None, "neutral") for noun in ("staff", "room", "food", "visit")] * 15
    + [LabelledExample(f"Lovely {noun}, thank you", 9, None, "positive") for noun in ("staff", "room", "food")] * 30
    + [LabelledExample(f"Awful {noun}, never again", 1, None, "negative") for noun in ("staff", "room", "food")] * 30
    + [LabelledExample("Nothing", 10, None, "neutral")] * 20
)


def test_sentiment_learns_the_organisation_s_own_reading_of_words():
    base = BuiltinClassifier()
    assert base.classify("Fine parking", 10).sentiment == "positive"
    model = train(HOUSE_STYLE, themes=base.themes, base=base)
    # only the fitted head can read "Fine ..." beside a 10 as neutral: cross-validation gives it a say
    assert model.sentiment_stack is not None and (model.trained_on.sentiment_blend or 0) > 0
    clf = TrainedClassifier(model, base)
    assert clf.classify("Fine parking", 10).sentiment == "neutral"  # a word it was taught, new company
    assert clf.classify("Lovely nurses, thank you", 10).sentiment == "positive"
    assert clf.classify("Awful parking, never again", 0).sentiment == "negative"


# An organisation whose labels say what the built-in model reads, and whose words say nothing
# more: the same nouns in every class, so only the built-in reading tells the classes apart.
AGREEING = [
    LabelledExample(f"{opener} {noun}", score, None, sentiment)
    for opener, score, sentiment in (
        ("Lovely", 9, "positive"),
        ("Really great", 10, "positive"),
        ("Awful", 2, "negative"),
        ("Terrible", 1, "negative"),
        ("The", 7, "neutral"),
    )
    for noun in ("staff", "room", "food", "visit", "car park", "ward", "shop", "website", "desk", "queue")
] * 5


def test_where_the_built_in_reading_is_right_the_blend_keeps_it():
    base = BuiltinClassifier()
    assert all(base.classify(e.comment, e.score).sentiment == e.sentiment for e in AGREEING)
    model = train(AGREEING, themes=base.themes, base=base)
    # a fixed blend would give the head 250 / (250 + 150) of the say; the labels show it adds nothing
    assert model.sentiment_stack is not None and (model.trained_on.sentiment_blend or 0) < 0.5


def test_empty_answers_take_the_organisation_s_reading_but_still_get_no_themes():
    base = BuiltinClassifier()
    assert base.classify("Nothing", 10).sentiment == "positive"
    clf = TrainedClassifier(train(HOUSE_STYLE, themes=base.themes, base=base), base)
    result = clf.classify("Nothing", 10)
    assert result.sentiment == "neutral" and result.themes == ()


def test_with_fewer_than_200_sentiment_labels_the_built_in_sentiment_stands():
    base = BuiltinClassifier()
    few = HOUSE_STYLE[:60] + HOUSE_STYLE[-130:]  # 190 labels
    model = train(few, themes=base.themes, base=base)
    assert model.sentiment_stack is None and model.trained_on.sentiment_blend is None
    assert TrainedClassifier(model, base).classify("Fine parking", 10).sentiment == "positive"


def test_a_stored_sentiment_head_reads_as_the_fitted_one(tmp_path):
    base = BuiltinClassifier()
    model = train(HOUSE_STYLE, themes=base.themes, base=base)
    save(model, tmp_path)
    stored, fresh = load_classifier(data_dir=tmp_path), TrainedClassifier(model, base)
    for comment, score in [("Fine parking", 10), ("Lovely, thanks", 9), ("Nothing", 3), ("Awful food", 2)]:
        assert stored.classify(comment, score).sentiment == fresh.classify(comment, score).sentiment
        assert stored.classify(comment, score).sentiment_score == fresh.classify(comment, score).sentiment_score


def test_a_model_with_the_earlier_warm_started_sentiment_head_is_refused(tmp_path):
    base = BuiltinClassifier()
    version = save(train(HOUSE_STYLE, themes=base.themes, base=base), tmp_path)
    path = tmp_path / "classifier" / f"{version}.json"
    payload = json.loads(path.read_text())
    # the earlier format: a softmax head per class in place of sentiment_stack
    legacy = {"positive": {"": -5.0}, "neutral": {"": 5.0}, "negative": {"": -5.0}}
    path.write_text(json.dumps({**payload, "sentiment_stack": None, "sentiment_head": legacy}))
    with pytest.raises(StoredModelError, match=r"warm-started sentiment_head .*npsloop classifier train"):
        load_classifier(data_dir=tmp_path)


def test_a_model_stored_with_a_null_sentiment_head_reads_as_before(tmp_path):
    base = BuiltinClassifier()
    model = train(HOUSE_STYLE, themes=base.themes, base=base)
    version = save(model, tmp_path)
    path = tmp_path / "classifier" / f"{version}.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), "sentiment_head": None}))  # as written until now
    loaded = load_classifier(data_dir=tmp_path)
    assert isinstance(loaded, TrainedClassifier) and loaded.model == model


def test_a_language_the_lexicon_cannot_read_gets_no_themes_from_a_trained_model_either():
    base = BuiltinClassifier(THEMES)
    clf = TrainedClassifier(train(LABELS, themes=base.themes, base=base), base)
    result = clf.classify("Le kiosque était cassé et le service très lent", 2)
    assert result.language == "fr" and result.themes == ()


def test_a_theme_whose_labels_do_not_beat_its_zero_shot_reading_keeps_the_built_in_one():
    base = BuiltinClassifier()
    # the lexicon already gets every one of these right; a fitted head can only tie
    examples = [LabelledExample(f"The price went up again {n}", 3, ["pricing"], "negative") for n in range(10)] + [
        LabelledExample(f"Nice cafe {n}", 9, [], "positive") for n in range(20)
    ]
    model = train(examples, themes=base.themes, base=base)
    assert "pricing" in model.trained_on.kept_builtin and "pricing" not in model.theme_heads


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
