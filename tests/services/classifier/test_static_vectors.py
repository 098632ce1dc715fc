"""The static word vectors trained models read: tokenizing, encoding, storing and generalising."""

import random

import numpy as np
import pytest

from npsloop.services.classifier import static_vectors
from npsloop.services.classifier.active import load_latest
from npsloop.services.classifier.features import features
from npsloop.services.classifier.model import BuiltinClassifier
from npsloop.services.classifier.stored_model import DenseBlock, save
from npsloop.services.classifier.trained import TrainedClassifier
from npsloop.services.classifier.training import LabelledExample, train
from tests.services.classifier.test_stacking import comments

THEME = "onboarding_communication"
TRAINING_ANIMALS = ["dog", "cat", "horse", "cow", "sheep", "rabbit", "goat", "pig", "donkey", "chicken"]
UNSEEN_ANIMALS = ["puppy", "kitten", "pony", "lamb", "calf", "duck"]


def cosine(a: str, b: str) -> float:
    encoder = static_vectors.load()
    return float(np.dot(encoder.vector(a), encoder.vector(b)))


def test_words_are_lower_cased_without_accents_or_punctuation():
    assert static_vectors.words("The Café's coffee — GREAT!!! 10/10") == [
        "the",
        "cafe",
        "s",
        "coffee",
        "great",
        "10",
        "10",
    ]


def test_unknown_words_split_into_word_pieces_and_unreadable_ones_into_none():
    encoder = static_vectors.load()
    assert len(encoder.pieces("staff")) == 1
    pieces = encoder.pieces("unhelpfulness")
    assert len(pieces) > 1 and pieces == encoder.pieces("unhelpfulness")  # cached, same answer
    assert encoder.pieces("日本語") == ()


def test_a_comment_vector_has_unit_length_and_no_words_give_zeros():
    encoder = static_vectors.load()
    vector = encoder.vector("The staff were lovely")
    assert vector.shape == (encoder.dimension,) and abs(float(np.linalg.norm(vector)) - 1.0) < 1e-3
    assert not np.any(encoder.vector("!!! ...")) and not np.any(encoder.vector(""))
    assert [list(v) for v in encoder.encode(["a", "b"])] == [list(encoder.vector("a")), list(encoder.vector("b"))]


def test_comments_that_mean_the_same_lie_closer_than_comments_on_other_things():
    assert cosine("the staff were rude", "the receptionist was unkind") > cosine(
        "the staff were rude", "the parking is expensive"
    )
    assert cosine("delivery arrived late", "the parcel came days after the due date") > cosine(
        "delivery arrived late", "the app keeps crashing"
    )
    assert cosine("too expensive", "the price is too high") > cosine("too expensive", "the nurse was kind")


def animal_organisation() -> list[LabelledExample]:
    """An organisation that tags every comment naming an animal, a field the lexicon does not read."""
    rng = random.Random(1)
    examples = [
        LabelledExample(c.replace("The ", f"The {rng.choice(TRAINING_ANIMALS)} ", 1), rng.randint(0, 10), [THEME], None)
        for c in comments(rng, 80, None)
    ]
    examples += [LabelledExample(c, rng.randint(0, 10), [], None) for c in comments(rng, 120, None)]
    rng.shuffle(examples)
    return examples


def test_a_trained_model_reads_the_static_vectors_and_generalises_to_words_its_labels_never_showed():
    base = BuiltinClassifier()
    model = train(animal_organisation(), themes=base.themes, base=base)
    assert model.theme_stack is not None and model.theme_stack.encoder == static_vectors.NAME
    assert model.trained_on.embeddings == static_vectors.NAME
    classifier = TrainedClassifier(model, base)  # loads the vectors itself: every install has them

    def fitted(comment: str) -> float:
        analysis = base.analyse(comment)
        return classifier.stack.fitted_probabilities(
            features(analysis, 5, base.theme_ids),
            comment,
            analysis.theme_evidence,
            base.theme_ids,
            classifier.encoder.vector(comment),
        )[THEME]

    rng = random.Random(99)
    unseen = [c.replace("The ", f"The {word} ", 1) for word in UNSEEN_ANIMALS for c in comments(rng, 5, None)]
    plain = comments(rng, 30, None)
    # neither the words nor their character 4-grams were in any training comment: only the vectors know
    assert not any(word in c.comment for word in UNSEEN_ANIMALS for c in animal_organisation())
    assert np.mean([fitted(c) for c in unseen]) > 2 * np.mean([fitted(c) for c in plain])


def test_a_stored_model_with_static_vectors_classifies_as_the_one_in_memory(tmp_path):
    base = BuiltinClassifier()
    model = train(animal_organisation(), themes=base.themes, base=base)
    save(model, tmp_path)
    in_memory = TrainedClassifier(model, base)
    loaded = load_latest(tmp_path, base=base)
    assert loaded is not None and loaded.encoder is static_vectors.load()
    rng = random.Random(5)
    for comment in comments(rng, 10, "dog") + comments(rng, 10, None):
        assert loaded.classify(comment, 3) == in_memory.classify(comment, 3)


def animal_moods() -> list[LabelledExample]:
    """An organisation whose customers, asked about a farm visit, are unhappy whenever they name
    an animal (the animals were ill, say) and neutral otherwise; the words carry no sentiment."""
    rng = random.Random(2)
    examples = [
        LabelledExample(c.replace("The ", f"The {rng.choice(TRAINING_ANIMALS)} ", 1), 5, None, "negative")
        for c in comments(rng, 100, None)
    ]
    examples += [LabelledExample(c, 5, None, "neutral") for c in comments(rng, 120, None)]
    examples += [LabelledExample(f"Lovely {c[4:]}", 10, None, "positive") for c in comments(rng, 60, None)]
    rng.shuffle(examples)
    return examples


def test_the_sentiment_head_reads_the_static_vectors_and_generalises_to_words_its_labels_never_showed():
    base = BuiltinClassifier()
    model = train(animal_moods(), themes=base.themes, base=base)
    assert model.sentiment_stack is not None
    assert model.sentiment_stack.dense == DenseBlock(encoder=static_vectors.NAME, dimension=384, scale=1.5)
    classifier = TrainedClassifier(model, base)  # no theme labels: the sentiment head alone needs the vectors
    assert classifier.encoder is static_vectors.load()
    assert classifier.sentiment is not None
    # The fitted head's own reading: how far it is blended with the built-in table is chosen by
    # cross-validation, and these invented labels are told apart as well at any share.
    classifier.sentiment.blend = 1.0

    def negative(comment: str) -> float:
        builtin = base.classify(comment, 5)
        return classifier.sentiment.probabilities(
            features(base.analyse(comment), 5, base.theme_ids),
            comment,
            builtin.sentiment,
            builtin.sentiment_score,
            classifier.encoder.vector(comment),
            stems=base.analyse(comment).stems,
        )[2]

    rng = random.Random(98)
    unseen = [c.replace("The ", f"The {word} ", 1) for word in UNSEEN_ANIMALS for c in comments(rng, 5, None)]
    plain = comments(rng, 30, None)
    assert not any(word in c.comment for word in UNSEEN_ANIMALS for c in animal_moods())
    assert np.mean([negative(c) for c in unseen]) > 1.5 * np.mean([negative(c) for c in plain])
    with pytest.raises(ValueError, match=static_vectors.NAME):
        classifier.sentiment.probabilities({}, "The pony.", "neutral", 0.0, stems=())  # fitted with vectors: needs one


def test_a_stored_sentiment_head_with_static_vectors_reads_as_the_one_in_memory(tmp_path):
    base = BuiltinClassifier()
    model = train(animal_moods(), themes=base.themes, base=base)
    save(model, tmp_path)
    loaded, in_memory = load_latest(tmp_path, base=base), TrainedClassifier(model, base)
    assert loaded is not None and loaded.encoder is static_vectors.load()
    rng = random.Random(6)
    for comment in comments(rng, 10, "pony") + comments(rng, 10, None) + ["Nothing"]:
        assert loaded.classify(comment, 5) == in_memory.classify(comment, 5)
