"""What trained heads read from a comment: the built-in model's analysis as sparse features.

Training and inference must compute the very same features, so both take them from here.
"""

from __future__ import annotations

from npsloop.services.classifier.model import Analysis, category_for_score
from npsloop.services.classifier.sentiment import score_prior

Features = dict[str, float]


def features(analysis: Analysis, score: int | None, theme_ids: tuple[str, ...]) -> Features:
    """Word stems (``w:``) and in-clause bigrams (``b:``), each theme's lexicon evidence
    (``lex:``), positive/negative weight, suggestions, the score's prior and NPS category."""
    feats: Features = {}
    previous = "|"
    for stem in analysis.stems:
        if stem != "|":
            feats["w:" + stem] = 1.0
            if previous != "|":
                feats["b:" + previous + "_" + stem] = 1.0
        previous = stem
    for theme_id, evidence in zip(theme_ids, analysis.theme_evidence):
        if evidence:
            feats["lex:" + theme_id] = min(evidence, 3.0)
    feats["pos"] = min(analysis.positive, 6.0) / 2
    feats["neg"] = min(analysis.negative, 6.0) / 2
    feats["sug"] = min(analysis.suggestions, 3)
    feats["prior"] = score_prior(score)
    feats["cat:" + str(category_for_score(score))] = 1.0
    return feats


def comment_features(analysis: Analysis, score: int | None, theme_ids: tuple[str, ...]) -> Features:
    """``features``, or for an empty answer only that it is empty and the score's prior."""
    if analysis.empty:
        return {"empty": 1.0, "prior": score_prior(score)}
    return features(analysis, score, theme_ids)
