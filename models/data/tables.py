"""Reading delimited text files row by row, with per-field validation.

A table is read into columns (a dict of lists). Each field has a parser that
raises ValueError with a short reason; a failing row becomes a BadRow naming
file, line and field. Rows are skipped while their share stays within the
allowed fraction; beyond it, or for problems of the whole file (encoding,
emptiness, missing columns), a DataError stops the run.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import math
from typing import Callable, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple

import tensorflow as tf

from models.data.errors import BadRow, DataError, ValidationReport

Parser = Callable[[str], object]


def parse_id(value: str) -> str:
    value = value.strip()
    if not value:
        raise ValueError("empty id")
    return value


def parse_int(value: str) -> int:
    value = value.strip()
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"'{value}' is not an integer") from None


def parse_optional_int(value: str) -> int:
    value = value.strip()
    return parse_int(value) if value else 0


def parse_rating(value: str) -> float:
    value = value.strip()
    if not value:
        return 0.0
    try:
        rating = float(value)
    except ValueError:
        raise ValueError(f"'{value}' is not a number") from None
    if not math.isfinite(rating) or rating < 0:
        raise ValueError(f"'{value}' is not a finite non-negative number")
    return rating


def parse_text(value: str) -> str:
    return value.strip()


def parse_genres(value: str) -> Tuple[str, ...]:
    return tuple(g.strip() for g in value.split("|") if g.strip())


def _read_text(path: str, encoding: str) -> str:
    with tf.io.gfile.GFile(path, "rb") as f:
        raw = f.read()
    try:
        text = raw.decode(encoding)
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise DataError(
            f"{path}:{line}: not valid {encoding} (byte 0x{raw[e.start]:02x} at offset {e.start}). "
            f"Save the file as {encoding.upper()} (e.g. `iconv -f latin1 -t utf-8`)."
        ) from None
    # A UTF-8 byte-order mark (Excel's "CSV UTF-8") is not part of the first column's name.
    return text[1:] if text.startswith("\ufeff") else text


def _records(text: str, delimiter: str, quoted: bool) -> Iterator[Tuple[int, List[str]]]:
    """(1-based line where the record starts, cells) of every non-blank record.

    Quoted CSV fields may hold the delimiter and newlines; only '\n' and '\r\n'
    end a line (latin-1 text may hold other characters that str.splitlines
    would split on).
    """
    if quoted and len(delimiter) == 1:
        reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
        line = 1
        for cells in reader:
            if any(c.strip() for c in cells):
                yield line, cells
            line = reader.line_num + 1
        return
    for number, line in enumerate(text.split("\n"), 1):
        line = line[:-1] if line.endswith("\r") else line
        if line.strip():
            yield number, line.split(delimiter)


def read_table(
    path: str,
    fields: Sequence[Tuple[str, Parser]],
    report: ValidationReport,
    max_bad_fraction: float,
    *,
    delimiter: str = ",",
    header: bool = True,
    optional: Sequence[str] = (),
    defaults: Optional[Dict[str, object]] = None,
    encoding: str = "utf-8",
    row_check: Optional[Callable[[dict], Optional[Tuple[str, str]]]] = None,
    unique: Optional[str] = None,
    domains: Optional[Mapping[str, "Domain"]] = None,
) -> Dict[str, List[object]]:
    """Reads a delimited file into validated columns.

    Args:
      path: the file.
      fields: (name, parser) in file order when ``header`` is False; with a
        header, columns are matched by name and extra columns are ignored
        (a row with more cells than the header is invalid).
      report: collects skipped rows and row counts.
      max_bad_fraction: allowed share of invalid rows (0: none allowed).
      delimiter: a one-character delimiter, or '::' (MovieLens 1M).
      header: whether the first line names the columns. Files with a header
        are CSV: fields may be quoted and hold the delimiter or newlines.
      optional: columns that may be absent from the header; they take
        ``defaults[name]``.
      defaults: values of absent optional columns.
      encoding: text encoding of the file (a UTF-8 byte-order mark is dropped).
      row_check: a check across fields of a parsed row; returns
        (field, reason) for a bad row.
      unique: a field whose values must not repeat (an id column); a repeat
        is an invalid row naming the line of the first.
      domains: field -> the schema's allowed range; values outside are invalid rows.

    Returns:
      Column name -> list of parsed values, one per valid row.

    Raises:
      DataError: the file is missing, empty, not in ``encoding``, lacks a
        required column, or has more invalid rows than allowed.
    """
    if not tf.io.gfile.exists(path):
        raise DataError(f"{path}: file not found.")
    text = _read_text(path, encoding)
    if not text.strip():
        raise DataError(f"{path}: the file is empty; it needs at least one data row.")
    defaults = defaults or {}
    domains = domains or {}
    records = _records(text, delimiter, quoted=header)
    if header:
        _, names = next(records)
        names = [n.strip() for n in names]
        missing = [n for n, _ in fields if n not in names and n not in optional]
        if missing:
            raise DataError(
                f"{path}:1: missing required column(s) {missing}; the header has {names}. "
                f"Add the column(s) or rename the header."
            )
        positions = {n: names.index(n) for n, _ in fields if n in names}
        width, what = len(names), f"the header has {len(names)}"
    else:
        positions = {n: i for i, (n, _) in enumerate(fields)}
        width, what = len(fields), f"this layout has {len(fields)}"
    parsers = dict(fields)
    columns: Dict[str, List[object]] = {n: [] for n, _ in fields}
    first_line: Dict[object, int] = {}
    bad: List[BadRow] = []
    total = 0
    for number, cells in records:
        total += 1
        row, problem = {}, None
        if len(cells) > width:
            problem = BadRow(path, number, f"column {width + 1}",
                             f"the row has {len(cells)} field(s), {what}"
                             + ("; quote values that contain the delimiter" if header else ""))
        for name, _ in fields:
            if problem is not None:
                break
            if name not in positions:
                row[name] = defaults.get(name)
                continue
            pos = positions[name]
            if pos >= len(cells):
                problem = BadRow(path, number, name, f"missing value (row has {len(cells)} field(s))")
                break
            try:
                row[name] = parsers[name](cells[pos])
            except ValueError as e:
                problem = BadRow(path, number, name, str(e))
                break
            if name in domains:
                outside = domains[name].violation(row[name])
                if outside:
                    problem = BadRow(path, number, name, outside)
        if problem is None and row_check is not None:
            found = row_check(row)
            if found:
                problem = BadRow(path, number, found[0], found[1])
        if problem is None and unique is not None:
            if row[unique] in first_line:
                problem = BadRow(path, number, unique,
                                 f"id '{row[unique]}' already listed on line {first_line[row[unique]]}; "
                                 f"each id must be listed once")
            else:
                first_line[row[unique]] = number
        if problem is not None:
            bad.append(problem)
            continue
        for name, value in row.items():
            columns[name].append(value)
    if total == 0:
        raise DataError(f"{path}: the file has a header but no data rows.")
    report.rows_read[path] = total
    if bad:
        if len(bad) > max_bad_fraction * total:
            listed = "\n  ".join(str(b) for b in bad[:10])
            more = f"\n  ... and {len(bad) - 10} more" if len(bad) > 10 else ""
            raise DataError(
                f"{path}: {len(bad)} of {total} row(s) are invalid (allowed: "
                f"{max_bad_fraction:.2%}):\n  {listed}{more}\n"
                f"Fix the rows, or raise --max-bad-rows-fraction to skip them."
            )
        report.skipped.extend(bad)
    return columns


@dataclasses.dataclass(frozen=True)
class Domain:
    """The range the schema allows for a numeric field (None: unbounded)."""

    low: Optional[float]
    high: Optional[float]
    source: str

    def violation(self, value) -> Optional[str]:
        if (self.low is not None and value < self.low) or (self.high is not None and value > self.high):
            return (f"{value} is outside [{self.low}, {self.high}], the range {self.source} allows; "
                    f"fix the value (or the schema, if it is valid data)")
        return None
