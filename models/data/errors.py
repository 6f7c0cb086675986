"""Errors and reports of data validation.

Every problem names the file, the line (1-based, as an editor shows it) and the
field, and says what to do about it.
"""

from __future__ import annotations

import dataclasses
from typing import List


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
