"""Reading delimited text files row by row, with per-field validation.

A table is read into columns (a dict of lists). Each field has a parser that
raises ValueError with a short reason; a failing row becomes a BadRow naming
file, line and field. Rows are skipped while their share stays within the
allowed fraction; beyond it, or for problems of the whole file (encoding,
emptiness, missing columns), a DataError stops the run.
"""

from __future__ import annotations

import csv
import io
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import tensorflow as tf

from components.data.errors import BadRow, DataError, ValidationReport

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
    if rating != rating or rating < 0:
        raise ValueError(f"'{value}' is not a non-negative number")
    return rating


def parse_text(value: str) -> str:
    return value.strip()


def parse_genres(value: str) -> Tuple[str, ...]:
    return tuple(g.strip() for g in value.split("|") if g.strip())


def _read_text(path: str, encoding: str) -> str:
    with tf.io.gfile.GFile(path, "rb") as f:
        raw = f.read()
    try:
        return raw.decode(encoding)
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise DataError(
            f"{path}:{line}: not valid {encoding} (byte 0x{raw[e.start]:02x} at offset {e.start}). "
            f"Save the file as {encoding.upper()} (e.g. `iconv -f latin1 -t utf-8`)."
        ) from None


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
) -> Dict[str, List[object]]:
    """Reads a delimited file into validated columns.

    Args:
      path: the file.
      fields: (name, parser) in file order when ``header`` is False; with a
        header, columns are matched by name and extra columns are ignored.
      report: collects skipped rows and row counts.
      max_bad_fraction: allowed share of invalid rows (0: none allowed).
      delimiter: a one-character delimiter, or '::' (MovieLens 1M).
      header: whether the first line names the columns.
      optional: columns that may be absent from the header; they take
        ``defaults[name]``.
      defaults: values of absent optional columns.
      encoding: text encoding of the file.
      row_check: a check across fields of a parsed row; returns
        (field, reason) for a bad row.

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
    lines = text.splitlines()
    first_line = 1
    if header:
        names = [n.strip() for n in _split(lines[0], delimiter)]
        missing = [n for n, _ in fields if n not in names and n not in optional]
        if missing:
            raise DataError(
                f"{path}:1: missing required column(s) {missing}; the header has {names}. "
                f"Add the column(s) or rename the header."
            )
        positions = {n: names.index(n) for n, _ in fields if n in names}
        lines, first_line = lines[1:], 2
    else:
        positions = {n: i for i, (n, _) in enumerate(fields)}
    parsers = dict(fields)
    columns: Dict[str, List[object]] = {n: [] for n, _ in fields}
    bad: List[BadRow] = []
    total = 0
    for offset, line in enumerate(lines):
        if not line.strip():
            continue
        total += 1
        number = first_line + offset
        cells = _split(line, delimiter)
        row, problem = {}, None
        for name, _ in fields:
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
        if problem is None and row_check is not None:
            found = row_check(row)
            if found:
                problem = BadRow(path, number, found[0], found[1])
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


def _split(line: str, delimiter: str) -> List[str]:
    if len(delimiter) > 1 or '"' not in line:
        return line.split(delimiter)
    return next(csv.reader(io.StringIO(line), delimiter=delimiter))
