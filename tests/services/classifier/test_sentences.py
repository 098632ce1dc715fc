"""Trained models read each sentence of a longer comment on its own as well as the whole."""

import copy
import random

import pytest

from npsloop.services.classifier import training
from npsloop.services.classifier.active import load_latest
from npsloop.services.classifier.model import BuiltinClassifier
from npsloop.services.classifier.stored_model import SentenceReading, save
from npsloop.services.classifier.text import sentences
from npsloop.services.classifier.trained import TrainedClassifier
from npsloop.services.classifier.training import train
from tests.services.classifier.test_stacking import comments
from tests.services.classifier.test_static_vectors import THEME, animal_organisation


@pytest.mark.parametrize(
    "text, expected",
    [
        ("Staff were kind. The wait was too long!", ["Staff were kind.", "The wait was too long!"]),
        ("Great service\nbut the parking  is awful", ["Great service", "but the parking  is awful"]),
        ("Good. Very good service indeed", []),  # a one-word sentence is not read on its own: one left
        ("Rated 3.5 out of 5 overall", []),  # a decimal point ends no sentence
        ("One sentence only.", []),
        ("", []),
    ],
)
def test_sentences_of_two_words_or_more_are_split_at_their_ends(text, expected):
    assert sentences(text) == expected


@pytest.fixture(scope="module")
def model():
    base = BuiltinClassifier()
    return base, train(animal_organisation(), themes=base.themes, base=base)


def long_comment(rng: random.Random, animal: str, filler_sentences: int) -> str:
    return " ".join([f"The {animal} was there."] + comments(rng, filler_sentences, None))


def test_a_theme_one_sentence_of_a_long_comment_names_is_found(model):
    base, trained = model
    assert trained.theme_stack.sentences == SentenceReading(threshold=training.SENTENCE_THRESHOLD)
    by_sentence = TrainedClassifier(trained, base)
    whole_only = TrainedClassifier(trained, base)
    whole_only.sentence_threshold = None
    rng = random.Random(7)
    found = {"sentences": 0, "whole": 0}
    long_comments = [long_comment(rng, rng.choice(["dog", "cat", "horse", "cow"]), 6) for _ in range(20)]
    for comment in long_comments:
        found["sentences"] += THEME in {t.id for t in by_sentence.classify(comment, 5).themes}
        found["whole"] += THEME in {t.id for t in whole_only.classify(comment, 5).themes}
    # Over the whole comment the animal's words share its length with six sentences of filler.
    assert found["whole"] <= 5 and found["sentences"] >= 18, found
    # Filler alone, however long, is not the theme in any of its sentences.
    for comment in [" ".join(comments(rng, 6, None)) for _ in range(20)]:
        assert THEME not in {t.id for t in by_sentence.classify(comment, 5).themes}


def test_a_stack_stored_without_a_sentence_reading_reads_whole_comments_only(model, tmp_path):
    base, trained = model
    save(trained, tmp_path)
    loaded = load_latest(tmp_path, base=base)
    assert loaded is not None and loaded.sentence_threshold == training.SENTENCE_THRESHOLD
    whole = copy.deepcopy(trained)  # stored as --embeddings models are: no sentence reading
    whole.theme_stack.sentences = None
    save(whole, tmp_path)
    assert '"sentences"' not in (tmp_path / "classifier" / f"{whole.version}.json").read_text()
    loaded = load_latest(tmp_path, base=base)
    assert loaded is not None and loaded.version == whole.version and loaded.sentence_threshold is None
    rng = random.Random(8)
    comment = long_comment(rng, "dog", 6)
    assert THEME not in {t.id for t in loaded.classify(comment, 5).themes}
