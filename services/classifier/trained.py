"""A trained model applied to comments: the organisation's own classifier.

Each theme's heads are scaled to their own thresholds and averaged, themes without one keep
the built-in zero-shot; a longer comment is also read sentence by sentence, so that a theme one
sentence names plainly is not diluted by the rest.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from npsloop.services.classifier.calibration import TRUST_AT, sigmoid, trust_for
from npsloop.services.classifier.embeddings import EmbeddingsUnavailable, Encoder, load_encoder
from npsloop.services.classifier.features import Features, comment_features, features
from npsloop.services.classifier.model import (
    Analysis,
    BuiltinClassifier,
    Classification,
    ThemeScore,
    category_for_score,
)
from npsloop.services.classifier.sentiment_head import SentimentHead
from npsloop.services.classifier.stacking import StackedHeads, builtin_confidence
from npsloop.services.classifier.stored_model import StackedHead, TrainedModel
from npsloop.services.classifier.text import sentences


class TrainedClassifier:
    def __init__(self, model: TrainedModel, base: BuiltinClassifier, encoder: Encoder | None = None) -> None:
        """``encoder``: the one the model was trained with; loaded here when not given (the ml
        extra's MiniLM only where it is installed)."""
        self.model = model
        # The built-in vocabulary as the organisation's labels re-weighted it (none: unchanged).
        base = base.with_term_factors(
            {t: {tuple(term.split()): f for term, f in terms.items()} for t, terms in model.term_factors.items()}
        )
        self.base = base
        needed = model.encoder
        if needed and encoder is None:
            encoder = load_encoder(needed)  # raises EmbeddingsUnavailable where it cannot be had
        if needed and encoder is not None and encoder.name != needed:
            raise EmbeddingsUnavailable(
                f"classifier version {model.version} reads {needed} sentence embeddings; got {encoder.name}"
            )
        self.encoder = encoder if needed else None
        self.version = model.version or "trained-unsaved"
        self.heads = {t: h for t, h in model.theme_heads.items() if t in base.theme_ids}
        positives = model.trained_on.theme_positives
        self.trust = {t: trust_for(positives.get(t, 0), TRUST_AT) for t in self.heads}
        self.thresholds = model.trained_on.thresholds
        stack = model.theme_stack
        self.stack_heads: dict[str, StackedHead] = stack.heads if stack is not None else {}
        self.stack_themes = frozenset(stack.theme_ids if stack is not None else ()) & frozenset(base.theme_ids)
        self.stack_threshold = stack.threshold if stack is not None else 0.5
        self.stack = StackedHeads(stack) if stack is not None and stack.heads else None
        # None: whole comments only (how --embeddings models are stored)
        self.sentence_threshold = stack.sentences.threshold if stack is not None and stack.sentences else None
        self._index_warm_heads()
        self.sentiment = SentimentHead(model.sentiment_stack) if model.sentiment_stack is not None else None

    def _index_warm_heads(self) -> None:
        """All warm-started heads as one matrix (feature x head): one product per comment
        instead of a dictionary walk per head."""
        import numpy as np

        self._warm_themes = list(self.heads)
        self._warm_positions = [self.base.theme_ids.index(t) for t in self._warm_themes]
        self._warm_index: dict[str, int] = {}
        for head in self.heads.values():
            for f in head:
                if f:
                    self._warm_index.setdefault(f, len(self._warm_index))
        self._warm_weights = np.zeros((len(self._warm_index), len(self._warm_themes)))
        for column, head in enumerate(self.heads.values()):
            for f, w in head.items():
                if f:
                    self._warm_weights[self._warm_index[f], column] = w
        self._warm_bias = np.array([head.get("", 0.0) for head in self.heads.values()])

    def _warm_confidences(self, feats: Features, evidence: tuple[float, ...]) -> dict[str, float]:
        """``calibration.theme_confidence`` of every warm-started head at once."""
        if not self._warm_themes:
            return {}
        import numpy as np

        index = self._warm_index
        rows, values = [], []
        for f, v in feats.items():
            if (r := index.get(f)) is not None:
                rows.append(r)
                values.append(v)
        z = self._warm_bias + np.array(values) @ self._warm_weights[rows] if rows else self._warm_bias
        out = {}
        for theme_id, position, zt in zip(self._warm_themes, self._warm_positions, z.tolist()):
            trust = self.trust.get(theme_id, 1.0)
            out[theme_id] = trust * sigmoid(zt) + (1.0 - trust) * builtin_confidence(evidence[position])
        return out

    def _theme_decisions(
        self, comment: str, analysis: Analysis, feats: Features, dense: Sequence[float] | None
    ) -> dict[str, float]:
        """Every theme's decision for one text: 0.5 or more means the theme is there."""
        fitted = {}
        if self.stack is not None:
            fitted = self.stack.fitted_probabilities(
                feats, comment, analysis.theme_evidence, self.base.theme_ids, dense
            )
        warm = self._warm_confidences(feats, analysis.theme_evidence)
        decisions = {}
        for theme_id, evidence in zip(self.base.theme_ids, analysis.theme_evidence):
            head = self.heads.get(theme_id)
            if head is None:
                confidence, threshold = builtin_confidence(evidence), 0.5
            else:
                # few labels: lean on the built-in reading; many: on the fitted head
                confidence = warm[theme_id]
                threshold = self.thresholds.get(theme_id, 0.5)
            # each reading scaled so that its own threshold lands on 0.5, then averaged
            decision = confidence * 0.5 / threshold
            stack_head = self.stack_heads.get(theme_id) if theme_id in self.stack_themes else None
            if stack_head is not None:
                assert self.stack is not None
                stacked = self.stack.confidence(theme_id, fitted, evidence)
                stacked *= 0.5 / self.stack_threshold
                # The stacked head already weighs the built-in reading (its blend): averaging it
                # with that reading again, where no warm-started head was kept, would count it twice.
                decision = (decision + stacked) / 2 if head is not None else stacked
            decisions[theme_id] = decision
        return decisions

    def _read_sentences(
        self, comment: str, language: str, score: int | None, decisions: dict[str, float], threshold: float
    ) -> None:
        """Raise ``decisions`` to what each sentence of a longer comment says on its own.

        Over a whole comment a theme's words share the text's length with every other theme's
        ("Staff were lovely. The wait was far too long."); read alone, a sentence says plainly
        what it is about. A sentence counts where its own decision reaches the stricter
        ``threshold`` (scaled to land on 0.5 like every other reading)."""
        for sentence in sentences(comment):
            analysis = self.base.analyse(sentence, language)
            if analysis.empty or not analysis.stems:
                continue
            feats = features(analysis, score, self.base.theme_ids)
            own = self._theme_decisions(sentence, analysis, feats, self._vector(sentence))
            for theme_id, decision in own.items():
                decisions[theme_id] = max(decisions[theme_id], decision * 0.5 / threshold)

    def _vector(self, comment: str | None) -> Sequence[float] | None:
        """The comment's vector for the heads that read one; None where none does."""
        return self.encoder.encode([comment or ""])[0] if self.encoder is not None else None

    @property
    def prepares_batches(self) -> bool:
        return hasattr(self.encoder, "prepare")

    def prepare(self, comments: Sequence[str | None]) -> None:
        """Encode a batch of comments ahead of classifying them one by one (embeddings only:
        a batch costs less per comment); a no-op otherwise."""
        prepare: Any = getattr(self.encoder, "prepare", None)  # a plain Encoder has no cache to fill
        if prepare is not None:
            prepare([c for c in comments if c])

    def classify(self, comment: str | None, score: int | None) -> Classification:
        analysis = self.base.analyse(comment)
        category = category_for_score(score)
        builtin = self.base.from_analysis(analysis, category, score)
        if analysis.unread or not analysis.stems:
            sentiment, value = builtin.sentiment, builtin.sentiment_score
            if analysis.empty and self.sentiment is not None:
                sentiment, value = self.sentiment.read(
                    comment_features(analysis, score, self.base.theme_ids),
                    comment or "",
                    builtin.sentiment,
                    builtin.sentiment_score,
                    self._vector(comment),
                    stems=analysis.stems,
                )
            return Classification(category, builtin.themes, sentiment, value, builtin.language, self.version)
        feats = features(analysis, score, self.base.theme_ids)
        dense = self._vector(comment)
        decisions = self._theme_decisions(comment or "", analysis, feats, dense)
        if self.sentence_threshold is not None:
            self._read_sentences(comment or "", analysis.language, score, decisions, self.sentence_threshold)
        themes = [ThemeScore(t, round(min(d, 1.0), 4)) for t, d in decisions.items() if d >= 0.5]
        themes.sort(key=lambda t: (-t.confidence, t.id))
        sentiment, value = builtin.sentiment, builtin.sentiment_score
        if self.sentiment is not None:
            sentiment, value = self.sentiment.read(
                feats, comment or "", builtin.sentiment, builtin.sentiment_score, dense, stems=analysis.stems
            )
        return Classification(category, tuple(themes), sentiment, value, builtin.language, self.version)
