"""The stacked theme heads: learnt from an organisation's labels, stored, and used."""

import json
import random

from services.classifier.model import BuiltinClassifier, load_classifier
from services.classifier.stacking import fit_stack
from services.classifier.training import LabelledExample, TrainedClassifier, features, save, train

# words no built-in theme reads
FILLER = ("morning afternoon today yesterday room desk floor window chair card door hallway corner "
          "table lamp wall garden carpet ceiling curtain").split()


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
    examples = [LabelledExample(c, rng.randint(0, 10), ["onboarding_communication"], None)
                for c in comments(rng, 40, "tannoy")]
    examples += [LabelledExample(c, rng.randint(0, 10), [], None) for c in comments(rng, 120, None)]
    rng.shuffle(examples)
    return examples


def test_a_cue_the_lexicon_does_not_know_is_learnt_from_labels():
    base = BuiltinClassifier()
    examples = organisation()
    assert all("onboarding_communication" not in {t.id for t in base.classify(e.comment, e.score).themes}
               for e in examples)  # the built-in model cannot see it
    model = train(examples, themes=base.themes, base=base)
    head = model.theme_stack["heads"]["onboarding_communication"]
    assert head["blend"] > 0 and head["weights"]["w:tannoy"] > 0
    clf = TrainedClassifier(model, base)
    rng = random.Random(99)  # fresh comments, not the training ones
    assert all("onboarding_communication" in {t.id for t in clf.classify(c, 5).themes}
               for c in comments(rng, 20, "tannoy"))
    assert not any("onboarding_communication" in {t.id for t in clf.classify(c, 5).themes}
                   for c in comments(rng, 20, None))


def test_threshold_is_half_the_out_of_fold_f1_and_themes_without_labels_get_no_head():
    base = BuiltinClassifier()
    rows = organisation()
    analyses = [base.analyse(e.comment) for e in rows]
    stack = fit_stack([features(a, e.score, base.theme_ids) for a, e in zip(analyses, rows)],
                      [set(e.themes) for e in rows], [a.theme_evidence for a in analyses], list(base.theme_ids))
    assert set(stack["heads"]) == {"onboarding_communication"}  # no other theme has a positive label
    assert 0.05 <= stack["threshold"] <= 0.5  # F1 <= 1, so F1 / 2 <= 0.5


def test_stored_stack_round_trips_and_a_model_stored_without_one_still_loads(tmp_path):
    base = BuiltinClassifier()
    model = train(organisation(), themes=base.themes, base=base)
    version = save(model, tmp_path)
    clf = load_classifier(data_dir=tmp_path)
    assert clf.version == version and clf.model.theme_stack == json.loads(json.dumps(model.theme_stack))
    assert "onboarding_communication" in {t.id for t in clf.classify("The tannoy desk chair.", 5).themes}
    # a model stored before stacking existed: same format, warm-started heads, no "theme_stack" key
    path = tmp_path / "classifier" / f"{version}.json"
    payload = json.loads(path.read_text())
    del payload["theme_stack"]
    payload["theme_heads"] = {"onboarding_communication": {"": -1.04, "lex:onboarding_communication": 1.5,
                                                           "w:tannoy": 3.0}}
    payload["trained_on"]["theme_positives"] = {"onboarding_communication": 200}  # trusted alone
    path.write_text(json.dumps(payload))
    older = load_classifier(data_dir=tmp_path)
    assert older.version == version and older.stack_heads == {}
    assert "onboarding_communication" in {t.id for t in older.classify("The tannoy desk chair.", 5).themes}
    assert not older.classify("The desk chair.", 5).themes


def test_training_with_stacking_is_deterministic():
    base = BuiltinClassifier()
    a = train(organisation(), themes=base.themes, base=base)
    b = train(organisation(), themes=base.themes, base=base)
    assert a.theme_stack == b.theme_stack
