"""Reading a CSV or JSON Lines export and mapping each record to a response (the
``ResponseIn`` body the API takes), streaming: one record in memory at a time.

Nothing is guessed: a score must be a whole number from 0 to 10 ("9", "9.0" and "9 - Very
likely" are 9; "85", "4.5" and "9/10" are refused), a timestamp without a zone takes the
zone the user names (UTC unless told), and a column the map names must exist.
"""

from __future__ import annotations

import csv
import hashlib
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import IO, Any

from npsloop.services.ingest.import_presets import PRESETS, Preset, normalise
from npsloop.shared.jsontext import compact_json

TARGETS = (
    "score",
    "comment",
    "external_id",
    "responded_at",
    "customer.id",
    "customer.email",
    "customer.name",
    "customer.account_id",
    "customer.segment",
    "survey.touchpoint",
    "survey.kind",
    "survey.channel",
    "lifecycle_stage",
)
_SCORE = re.compile(r"^\s*(\d{1,4})(?:\.0+)?\s*(?:[-–—:]\s*\D.*)?$", re.DOTALL)


class ImportSetupError(ValueError):
    """The file, the preset or the map cannot be used (nothing was imported)."""


@dataclass
class Record:
    """One answer as read: its first line in the file and its fields, or why it cannot be read."""

    line: int
    values: list[str] | dict[str, Any]
    problem: str | None = None


def parse_map(text: str | None, *, constants: bool = False) -> dict[str, str]:
    """``score=COL,comment=COL,properties.plan=COL`` as {target: column} (or {target: value})."""
    mapping: dict[str, str] = {}
    for part in (text or "").split(","):
        if not part.strip():
            continue
        target, sep, column = part.partition("=")
        target = target.strip()
        if not sep or not column.strip():
            raise ImportSetupError(f"{part.strip()!r}: expected TARGET=COLUMN, e.g. score=Score")
        if target not in TARGETS and not (target.startswith("properties.") and len(target) > len("properties.")):
            what = "--set" if constants else "--map"
            raise ImportSetupError(f"{what}: unknown target {target!r}; use {', '.join(TARGETS)} or properties.<name>")
        mapping[target] = column.strip()
    return mapping


class RecordSource:
    """The records of a file, with how many bytes of it were read (for progress)."""

    def __init__(self, path: Path, *, fmt: str | None = None, preset: Preset | None = None) -> None:
        self.path = path
        self.format = fmt or ("jsonl" if path.suffix.lower() in (".jsonl", ".ndjson", ".json") else "csv")
        self.preset = preset
        self.total_bytes = path.stat().st_size
        self.bytes_read = 0
        self.headers: list[str] = []
        self._file: IO[bytes] = path.open("rb")
        self._bad_lines: set[int] = set()
        self._line = 0
        self._csv: Any = None
        if self.format == "csv":
            delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
            self._csv = csv.reader(self._text_lines(), delimiter=delimiter)
            try:
                self.headers = next(self._csv)
            except StopIteration:
                self._file.close()
                raise ImportSetupError(f"{path} is empty: expected a header row") from None
            self.headers[0:1] = [self.headers[0].removeprefix("\ufeff")] if self.headers else []

    def close(self) -> None:
        self._file.close()

    def _text_lines(self) -> Iterator[str]:
        # Split at b"\n", which never occurs inside a UTF-8 character: each line decodes alone.
        for raw in self._file:
            self.bytes_read += len(raw)
            self._line += 1
            try:
                yield raw.decode("utf-8")
            except UnicodeDecodeError:
                self._bad_lines.add(self._line)  # the record spanning this line is rejected
                yield raw.decode("utf-8", errors="replace")

    def __iter__(self) -> Iterator[Record]:
        return self._csv_records() if self.format == "csv" else self._json_records()

    def _csv_records(self) -> Iterator[Record]:
        reader, width = self._csv, len(self.headers)
        names = [normalise(h) for h in self.headers]
        extra = self.preset.extra_header_rows if self.preset else 0
        last = reader.line_num
        for row in reader:
            first, last = last + 1, reader.line_num
            if not row or row == [""]:
                continue
            if extra and self.preset:
                extra -= 1
                if self.preset.is_extra_header(dict(zip(names, row))):
                    continue
                extra = 0
            bad = [n for n in range(first, last + 1) if n in self._bad_lines] if self._bad_lines else None
            if bad:
                yield Record(first, row, f"line {bad[0]} is not valid UTF-8")
            elif len(row) > width:
                yield Record(first, row, f"has {len(row)} fields; the header has {width}")
            else:
                yield Record(first, row if len(row) == width else row + [""] * (width - len(row)))

    def _json_records(self) -> Iterator[Record]:
        for raw in self._file:
            self.bytes_read += len(raw)
            self._line += 1
            if not raw.strip():
                continue
            try:
                value = json.loads(raw)
            except ValueError as exc:  # UnicodeDecodeError included
                problem = "not valid UTF-8" if isinstance(exc, UnicodeDecodeError) else f"not valid JSON ({exc})"
                yield Record(self._line, {"text": raw.decode("utf-8", errors="replace").rstrip("\r\n")}, problem)
                continue
            if not isinstance(value, dict):
                yield Record(self._line, {"text": raw.decode().rstrip("\r\n")}, "not a JSON object")
            else:
                yield Record(self._line, value)


Getter = Callable[[Record], Any]
_GROUPS = ("customer.", "survey.", "properties.")


class RecordMapper:
    """Turns records into response bodies with the preset's columns, the user's map and constants.

    The getters are sorted by where their value goes once, up front: this runs for every
    row of files with millions of them.
    """

    def __init__(
        self,
        getters: dict[str, Getter],
        constants: dict[str, str],
        *,
        zone: tzinfo = UTC,
        date_formats: tuple[str, ...] = (),
        id_prefix: str = "",
        history: bool = True,
        described: dict[str, str] | None = None,
    ) -> None:
        self.zone, self.date_formats, self.id_prefix, self.history = zone, date_formats, id_prefix, history
        self.described = described or {}  # target -> column, to show the user
        self._score = getters.get("score")
        self._plain = [(t, g) for t, g in getters.items() if t in ("comment", "lifecycle_stage")]
        self._external, self._responded = getters.get("external_id"), getters.get("responded_at")
        self._groups = {
            prefix: [(t.removeprefix(prefix), g) for t, g in getters.items() if t.startswith(prefix)]
            for prefix in _GROUPS
        }
        self._constants = {
            prefix: {t.removeprefix(prefix): v for t, v in constants.items() if t.startswith(prefix)}
            for prefix in _GROUPS
        }
        self._plain_constants = {t: v for t, v in constants.items() if not t.startswith(_GROUPS)}

    def response(self, record: Record) -> dict[str, Any] | str:
        """The response body for ``record``, or the reason it cannot be one."""
        if record.problem:
            return record.problem
        body: dict[str, Any] = dict(self._plain_constants)
        score = _score(self._score(record) if self._score else body.pop("score", None))
        if isinstance(score, str):
            return score
        body["score"] = score
        for target, get in self._plain:
            value = _present(get(record))
            if value is not None:
                body[target] = value
        for prefix, getters in self._groups.items():
            group = dict(self._constants[prefix])
            for key, get in getters:
                value = _present(get(record))
                if value is not None:
                    group[key] = value
            if group:
                body[prefix[:-1]] = group
        customer = body.setdefault("customer", {})
        if "id" not in customer:
            if "email" not in customer:
                return "no customer id: map customer.id=COLUMN (or customer.email=COLUMN, used as the id)"
            customer["id"] = customer["email"]
        responded = _present(self._responded(record)) if self._responded else body.pop("responded_at", None)
        if responded is not None:
            moment = self._instant(responded)
            if moment is None:
                return f"responded_at: {responded!r} is not a date and time this import can read"
            body["responded_at"] = moment
        # The file's own id makes a re-run store nothing twice; without one, the answer itself does.
        external = _present(self._external(record)) if self._external else body.pop("external_id", None)
        if external is not None:
            body["external_id"] = f"{self.id_prefix}{external}"
        else:
            body["external_id"] = "row:" + hashlib.sha256(compact_json(body).encode()).hexdigest()[:40]
        if self.history:
            body["history"] = True
        return body

    def _instant(self, value: Any) -> datetime | None:
        """``value`` as an aware time (Unix seconds, ISO 8601 or the preset's formats; the
        import's zone when it names none), or None when it is none of those."""
        moment: datetime | None = None
        if (isinstance(value, (int, float)) and not isinstance(value, bool)) or str(value).isdigit():
            try:
                return datetime.fromtimestamp(float(value), UTC)
            except (OverflowError, OSError, ValueError):
                return None
        text = str(value)
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            for fmt in self.date_formats:
                try:
                    moment = datetime.strptime(text, fmt)
                    break
                except ValueError:
                    continue
        if moment is None:
            return None
        return moment.replace(tzinfo=self.zone) if moment.tzinfo is None else moment


def _present(value: Any) -> Any:
    """A cell's value, or None when it is empty."""
    if isinstance(value, str):
        return value.strip() or None
    return value


def _score(value: Any) -> int | str:
    if isinstance(value, str) and value.isdigit() and len(value) <= 2:
        number = int(value)
        return (
            number
            if number <= 10
            else f"score: {number} is not on the 0-10 scale (npsloop does not convert other scales)"
        )
    if value is None or value == "" or (isinstance(value, str) and not value.strip()):
        return "no score"
    if isinstance(value, bool):
        return f"score: {value!r} is not a 0-10 score"
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, int):
        number = value
    else:
        match = _SCORE.match(str(value))
        if match is None:
            return f"score: {value!r} is not a whole number from 0 to 10"
        number = int(match.group(1))
    if not 0 <= number <= 10:
        return f"score: {number} is not on the 0-10 scale (npsloop does not convert other scales)"
    return number


def build_mapper(
    source: RecordSource,
    *,
    preset: Preset | None,
    mapping: dict[str, str],
    constants: dict[str, str],
    zone: tzinfo,
    history: bool,
) -> RecordMapper:
    """Resolve the preset's columns and the user's map against the file's header.

    Raises ImportSetupError naming a mapped column the file lacks, or when the NPS
    question cannot be told apart.
    """
    chosen: dict[str, str] = {}
    getters: dict[str, Getter] = {}
    if source.format == "csv":
        names = [normalise(h) for h in source.headers]

        def column(target: str, name: str) -> Getter:
            wanted = normalise(name)
            if wanted not in names:
                raise ImportSetupError(
                    f"--map {target}={name}: no such column; the file has {', '.join(map(repr, source.headers))}"
                )
            return _by_index(names.index(wanted))

        if preset:
            for target, aliases in preset.columns.items():
                found = next((normalise(a) for a in aliases if normalise(a) in names), None)
                if found is not None:
                    index = names.index(found)
                    getters[target], chosen[target] = _by_index(index), source.headers[index]
            for target, finder in (("score", preset.find_score), ("comment", preset.find_comment)):
                if target in getters or target in mapping:
                    continue
                found_at = finder(source.headers)
                if len(found_at) == 1:
                    getters[target], chosen[target] = _by_index(found_at[0]), source.headers[found_at[0]]
                elif target == "score":
                    candidates = ", ".join(repr(source.headers[i]) for i in found_at) or "none looks like it"
                    raise ImportSetupError(
                        f"cannot tell which column is the NPS question ({candidates}): give --map score=COLUMN"
                    )
        for target, name in mapping.items():
            getters[target], chosen[target] = column(target, name), name
    else:
        if preset:
            for target, aliases in preset.columns.items():
                getters[target], chosen[target] = _first_of(aliases), " or ".join(aliases)
        for target, name in mapping.items():
            getters[target], chosen[target] = _by_path(name), name
    if "score" not in getters:
        raise ImportSetupError("no score column: give --preset or --map score=COLUMN")
    return RecordMapper(
        getters,
        constants,
        zone=zone,
        date_formats=preset.date_formats if preset else (),
        id_prefix=f"{preset.name}:" if preset else "",
        history=history,
        described=chosen,
    )


def _by_index(index: int) -> Getter:
    return lambda record: record.values[index]  # type: ignore[index]


def _by_path(path: str) -> Getter:
    """A JSON record's field: ``name`` or ``a.b`` into nested objects."""
    keys = path.split(".")

    def get(record: Record) -> Any:
        value: Any = record.values
        for key in keys:
            if not isinstance(value, dict):
                return None
            value = value.get(key)
        return value if isinstance(value, (str, int, float, bool)) else None

    return get


def _first_of(paths: tuple[str, ...]) -> Getter:
    getters = [_by_path(p) for p in paths]

    def get(record: Record) -> Any:
        for getter in getters:
            value = getter(record)
            if value is not None and value != "":
                return value
        return None

    return get


def preset_named(name: str | None) -> Preset | None:
    if name is None:
        return None
    try:
        return PRESETS[name]
    except KeyError:
        raise ImportSetupError(f"unknown preset {name!r}; use one of {', '.join(PRESETS)}") from None
