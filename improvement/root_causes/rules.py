"""The low-feedback rule: which survey responses open a root-cause case.

Configured by ``ROOT_CAUSE_RULE`` (e.g. ``CLOSEDLOOP_ROOT_CAUSE_RULE='{"nps_max": 4}'``);
the keys not given keep their defaults, and ``null`` turns a criterion off:

- ``nps_max`` (0-10, default 6): NPS at or below it (a detractor);
- ``csat_max`` (1-5, default 2): any CSAT dimension at or below it;
- ``negative_sentiment`` (default true): a comment labelled negative.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

#: The CSAT dimensions the rule looks at, with the name a reason gives them.
CSAT_DIMENSIONS = {
    "csat_overall": "CSAT overall",
    "csat_speed": "CSAT speed",
    "csat_professionalism": "CSAT professionalism",
    "csat_attitude": "CSAT attitude",
    "csat_effectiveness": "CSAT effectiveness",
}
#: The reasons the rule writes (stored in English in ``FeedbackCase.trigger``, joined by
#: :data:`REASON_SEPARATOR`; :func:`improvement.root_causes.labels.trigger_label` shows
#: them in the reader's language).
NEGATIVE_COMMENT = "negative comment"
OPENED_BY_HAND = "opened by hand"
REASON_SEPARATOR = "; "
DEFAULT_RULE: dict[str, Any] = {"nps_max": 6, "csat_max": 2, "negative_sentiment": True}


class RuleConfigError(ValueError):
    """``ROOT_CAUSE_RULE`` has an unknown key or a value out of range."""


class ScoredFeedback(Protocol):
    """What the rule reads of a response (a :class:`SurveyResponse` has all of it)."""

    nps: int | None
    csat_overall: int | None
    csat_speed: int | None
    csat_professionalism: int | None
    csat_attitude: int | None
    csat_effectiveness: int | None
    sentiment_label: Any


@dataclass(frozen=True)
class LowFeedbackRule:
    """Thresholds of the rule; ``None`` turns a criterion off."""

    nps_max: int | None = 6
    csat_max: int | None = 2
    negative_sentiment: bool = True

    @classmethod
    def from_config(cls, value: Mapping[str, Any] | None) -> LowFeedbackRule:
        """Build the rule from the ``ROOT_CAUSE_RULE`` mapping over the defaults.

        Raises :class:`RuleConfigError` for an unknown key, an NPS threshold
        outside 0-10, a CSAT threshold outside 1-5 or a non-boolean switch.
        """
        settings = dict(DEFAULT_RULE)
        if value is not None:
            if not isinstance(value, Mapping):
                raise RuleConfigError("ROOT_CAUSE_RULE must be a mapping")
            unknown = set(value) - set(DEFAULT_RULE)
            if unknown:
                raise RuleConfigError(
                    f"ROOT_CAUSE_RULE: unknown key(s) {', '.join(sorted(unknown))}; "
                    f"known: {', '.join(DEFAULT_RULE)}"
                )
            settings.update(value)
        for key, low, high in (("nps_max", 0, 10), ("csat_max", 1, 5)):
            threshold = settings[key]
            if threshold is not None and (
                isinstance(threshold, bool)
                or not isinstance(threshold, int)
                or not low <= threshold <= high
            ):
                raise RuleConfigError(
                    f"ROOT_CAUSE_RULE: {key} must be a whole number {low}-{high} or null"
                )
        if not isinstance(settings["negative_sentiment"], bool):
            raise RuleConfigError("ROOT_CAUSE_RULE: negative_sentiment must be true or false")
        return cls(**settings)

    def reasons(self, feedback: ScoredFeedback) -> list[str]:
        """Why ``feedback`` is low, one short reason per criterion met; empty if it is not.

        Skipped answers (None) never count as low.
        """
        found: list[str] = []
        if self.nps_max is not None and feedback.nps is not None and feedback.nps <= self.nps_max:
            found.append(f"NPS {feedback.nps} ≤ {self.nps_max}")
        if self.csat_max is not None:
            for column, name in CSAT_DIMENSIONS.items():
                score = getattr(feedback, column)
                if score is not None and score <= self.csat_max:
                    found.append(f"{name} {score} ≤ {self.csat_max}")
        label = getattr(feedback.sentiment_label, "value", feedback.sentiment_label)
        if self.negative_sentiment and label == "negative":
            found.append(NEGATIVE_COMMENT)
        return found
