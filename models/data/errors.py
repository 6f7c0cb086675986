"""Errors, reports and messages of data validation, shared by both readers.

The in-memory reader (``models.data.readers``, ``tables``) and the ExampleGens' Beam reading
(``models.data.beam``) word every problem with the functions here, so a broken file gets the
same message from either. Every problem names the file, the line (1-based, as an editor
shows it) and the field, and says what to do about it.
"""

from __future__ import annotations

import dataclasses
from typing import List, Optional, Sequence


@dataclasses.dataclass(frozen=True)
class BadRow:
    """One row that failed validation."""

    path: str
    line: int
    field: str
    reason: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: field '{self.field}': {self.reason}"


class DataError(ValueError):
    """Input data that cannot be used; the message says where and what to do."""


@dataclasses.dataclass
class ValidationReport:
    """Rows skipped while reading, per file, so nothing vanishes silently."""

    rows_read: dict = dataclasses.field(default_factory=dict)
    skipped: List[BadRow] = dataclasses.field(default_factory=list)
    # Skipped rows beyond those listed in ``skipped`` (a distributed read keeps the first few).
    unlisted: int = 0
    # What is valid but worth knowing (e.g. timestamps that cannot order a split).
    warnings: List[str] = dataclasses.field(default_factory=list)

    def summary(self, limit: int = 10) -> str:
        lines = [f"warning: {w}" for w in self.warnings]
        if not self.skipped:
            return "\n".join(["all rows valid"] + lines)
        count = len(self.skipped) + self.unlisted
        lines.append(f"skipped {count} invalid row(s):")
        lines += [f"  {row}" for row in self.skipped[:limit]]
        if count > limit:
            lines.append(f"  ... and {count - limit} more")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {
            "rows_read": dict(self.rows_read),
            "skipped_count": len(self.skipped) + self.unlisted,
            "skipped": [dataclasses.asdict(row) for row in self.skipped],
            "warnings": list(self.warnings),
        }


# --- the messages ---


def decode_error(path: str, line: int, offset: int, byte: int, encoding: str) -> DataError:
    """The error of a byte that is not valid in ``encoding``, with the advice that fits it."""
    return DataError(
        f"{path}:{line}: not valid {encoding} (byte 0x{byte:02x} at offset {offset}). Save the "
        f"file as {encoding.upper()} (e.g. `iconv -f latin1 -t {encoding}` when it is latin-1, "
        f"as the MovieLens 100K and 1M files are).")


def repeated_id(path: str, number: int, field: str, value, first: int) -> BadRow:
    return BadRow(path, number, field, f"id '{value}' already listed on line {first}; "
                                       f"each id must be listed once")


def over_budget(path: str, bad: Sequence[BadRow], count: int, total: int,
                max_bad_fraction: float) -> Optional[str]:
    """The error message when ``count`` bad rows of ``total`` exceed the allowed fraction, else
    None; it lists the first ten of ``bad`` by line."""
    if not count or count <= max_bad_fraction * total:
        return None
    bad = sorted(bad, key=lambda b: b.line)
    listed = "\n  ".join(str(b) for b in bad[:10])
    more = f"\n  ... and {count - 10} more" if count > 10 else ""
    return (f"{path}: {count} of {total} row(s) are invalid (allowed: "
            f"{max_bad_fraction:.2%}):\n  {listed}{more}\n"
            f"Fix the rows, or raise --max-bad-rows-fraction to skip them.")


def no_rows(path: str) -> str:
    return f"{path}: the file has a header but no data rows."


def time_warnings(first: int, last: int, count: int) -> List[str]:
    """What makes the temporal split less temporal than it looks."""
    if count > 1 and first == last:
        return [f"all {count} interactions have the same timestamp ({first}): the "
                f"'temporal' split and the histories follow file order. Give real times for a "
                f"split that holds out each user's latest interactions."]
    return []


def unknown_id(kind: str, value: str, path: str) -> str:
    return f"{kind} '{value}' is not in {path}"
