"""How other tools lay out their response exports: which column is what, per tool.

Each preset names the columns a tool's own export uses (matched without regard to case or
spacing) and says how to find the NPS question, whose column is named after the question
the survey asked. ``docs/importing.md`` cites each tool's format.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field


def normalise(header: str) -> str:
    """A header as presets and --map match it: no BOM, lower case, single spaces."""
    return " ".join(header.replace("\ufeff", "").lower().split())


# How NPS questions are worded in practice ("How likely is it that you would recommend…").
_NPS_WORDS = ("recommend", "likely")
_COMMENT_PHRASES = ("reason for your score", "primary reason", "main reason", "why did you give", "why would you")


def nps_question_column(headers: Sequence[str]) -> list[int]:
    """Columns whose header reads like the NPS question."""
    return [i for i, h in enumerate(headers) if all(word in normalise(h) for word in _NPS_WORDS)]


def follow_up_question_column(headers: Sequence[str]) -> list[int]:
    """Columns whose header reads like NPS's open follow-up question ("What is the primary reason…")."""
    return [i for i, h in enumerate(headers) if any(p in normalise(h) for p in _COMMENT_PHRASES)]


def _qualtrics_nps(headers: Sequence[str]) -> list[int]:
    # Qualtrics adds <question>_NPS_GROUP next to every NPS question it scores.
    names = [normalise(h) for h in headers]
    questions = [n.removesuffix("_nps_group") for n in names if n.endswith("_nps_group")]
    return [names.index(q) for q in questions if q in names]


@dataclass(frozen=True)
class Preset:
    name: str
    # target -> the tool's column names for it, most specific first
    columns: dict[str, tuple[str, ...]]
    # The NPS question's column (and its follow-up's) when the header is the question's text.
    find_score: Callable[[Sequence[str]], list[int]] = nps_question_column
    find_comment: Callable[[Sequence[str]], list[int]] = follow_up_question_column
    # strptime formats of the tool's timestamps, tried after ISO 8601 and Unix seconds
    date_formats: tuple[str, ...] = ()
    # Rows right under the header that describe columns (question text, sub-headers)
    # rather than answer: how many there may be, and how to tell one.
    extra_header_rows: int = 0
    is_extra_header: Callable[[dict[str, str]], bool] = field(default=lambda row: False)


def _surveymonkey_subheader(row: dict[str, str]) -> bool:
    return not row.get("respondent id") and any(v in ("Response", "Open-Ended Response") for v in row.values())


def _qualtrics_label_row(row: dict[str, str]) -> bool:
    value = row.get("responseid", "")
    return value == "Response ID" or value.startswith('{"ImportId"')


PRESETS: dict[str, Preset] = {
    preset.name: preset
    for preset in (
        Preset(
            "delighted",
            {
                "external_id": ("Response ID", "id"),
                "score": ("Score", "score"),
                "comment": ("Comment", "comment"),
                "customer.id": ("Person ID", "person"),
                "customer.email": ("Email", "Person email", "email"),
                "customer.name": ("Name", "Person name", "name"),
                "responded_at": ("Response timestamp", "Created at", "created_at", "Date"),
            },
        ),
        Preset(
            "surveymonkey",
            {
                "external_id": ("Respondent ID",),
                "customer.email": ("Email Address",),
                "customer.id": ("Custom Data 1",),
                "responded_at": ("End Date", "Start Date"),
            },
            date_formats=("%m/%d/%Y %I:%M:%S %p", "%m/%d/%Y %H:%M:%S", "%m/%d/%Y"),
            extra_header_rows=1,
            is_extra_header=_surveymonkey_subheader,
        ),
        Preset(
            "typeform",
            {
                "external_id": ("#", "Token", "Response ID"),
                "customer.id": ("user_id", "userid", "customer_id"),
                "customer.email": ("email", "Email"),
                "responded_at": ("Submit Date (UTC)", "Submitted At", "Start Date (UTC)"),
            },
        ),
        Preset(
            "qualtrics",
            {
                "external_id": ("ResponseId",),
                "customer.id": ("ExternalReference",),
                "customer.email": ("RecipientEmail",),
                "responded_at": ("RecordedDate", "EndDate"),
            },
            find_score=_qualtrics_nps,
            extra_header_rows=2,
            is_extra_header=_qualtrics_label_row,
        ),
        Preset(
            "formbricks",
            {
                "external_id": ("Response ID",),
                "customer.id": ("User ID", "userId"),
                "customer.email": ("email", "Verified Email"),
                "responded_at": ("Timestamp",),
            },
            # Older Formbricks versions wrote only the day ("Sat Jun 15 2024").
            date_formats=("%a %b %d %Y",),
        ),
    )
}
