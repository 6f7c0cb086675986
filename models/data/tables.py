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
import unicodedata
from typing import Callable, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple

import tensorflow as tf

from models.data import errors
from models.data.errors import BadRow, DataError, ValidationReport

Parser = Callable[[str], object]


def parse_id(value: str) -> str:
    """An id, stripped. One holding a control character other than tab is refused:
    TensorFlow Transform's vocabularies silently drop tokens with a line break (\\n, \\r),
    so the id would reach no model, and the others are never intended in an id."""
    value = value.strip()
    if not value:
        raise ValueError("empty id")
    bad = next((c for c in value if c != "\t" and unicodedata.category(c) == "Cc"), None)
    if bad is not None:
        kind = "a line break" if bad in "\n\r" else "a control character"
        raise ValueError(f"id {value!r} holds {kind} (U+{ord(bad):04X}), which no vocabulary "
                         f"keeps; remove it from the id")
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


# Byte-order marks of the Unicode encodings that are not ASCII-compatible (UTF-32 first: its
# little-endian mark starts with UTF-16's). Excel's "Unicode text" is UTF-16 LE with a mark.
_WIDE_MARKS = ((b"\xff\xfe\x00\x00", "utf-32le"), (b"\x00\x00\xfe\xff", "utf-32be"),
               (b"\xff\xfe", "utf-16le"), (b"\xfe\xff", "utf-16be"))


def wide_encoding(head: bytes) -> Optional[str]:
    """The UTF-16 / UTF-32 variant whose byte-order mark ``head`` (a file's first bytes)
    starts with, or None."""
    return next((name for mark, name in _WIDE_MARKS if head.startswith(mark)), None)


def check_head(path: str, head: bytes, encoding: str) -> None:
    """Raises DataError when a file's first bytes are a UTF-16 or UTF-32 byte-order mark: such
    a file is read as neither UTF-8 nor latin-1 (every other byte is 0)."""
    wide = wide_encoding(head)
    if wide:
        raise DataError(
            f"{path}:1: the file is {wide.upper()} (its first bytes are that encoding's "
            f"byte-order mark); this layout reads {encoding.upper()}. Convert it, e.g. "
            f"`iconv -f {wide[:6].upper()} -t {encoding.upper()} {path} > converted.csv` "
            f"(or save it from the spreadsheet as \"CSV UTF-8\").")


def _read_text(path: str, encoding: str) -> str:
    with tf.io.gfile.GFile(path, "rb") as f:
        raw = f.read()
    check_head(path, raw[:4], encoding)
    try:
        text = raw.decode(encoding)
    except UnicodeDecodeError as e:
        raise errors.decode_error(path, raw[: e.start].count(b"\n") + 1, e.start, raw[e.start],
                           encoding) from None
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


@dataclasses.dataclass(frozen=True)
class TableSpec:
    """How one file of a layout is parsed.

    Attributes:
      fields: (name, parser) in file order when ``header`` is False; with a
        header, columns are matched by name and extra columns are ignored
        (a row with more cells than the header is invalid).
      delimiter: a one-character delimiter, or '::' (MovieLens 1M).
      header: whether the first line names the columns. Files with a header
        are CSV: fields may be quoted and hold the delimiter (and, in side
        tables, newlines).
      optional: columns that may be absent from the header; they take
        ``defaults[name]``.
      defaults: values of absent optional columns.
      encoding: text encoding of the file (a UTF-8 byte-order mark is dropped).
      unique: a field whose values must not repeat (an id column); a repeat
        is an invalid row naming the line of the first.
      checked: whether the schema's numeric domains apply to its fields.
      columns: field -> the header's name for it, where the file names it otherwise
        (ml-latest's ``userId``); errors name the file's column.
    """

    fields: Tuple[Tuple[str, Parser], ...]
    delimiter: str = ","
    header: bool = True
    optional: Tuple[str, ...] = ()
    defaults: Mapping[str, object] = dataclasses.field(default_factory=dict)
    encoding: str = "utf-8"
    unique: Optional[str] = None
    checked: bool = True
    columns: Mapping[str, str] = dataclasses.field(default_factory=dict)

    @property
    def quoted(self) -> bool:
        return self.header and len(self.delimiter) == 1

    def split_line(self, line: str) -> List[str]:
        """The cells of one physical line."""
        if self.quoted:
            return next(csv.reader([line], delimiter=self.delimiter), [])
        return line.split(self.delimiter)


class RowParser:
    """Parses the cells of one record of a table into a row, or names what is wrong.

    The same parser serves the in-memory reader (``read_table``) and the Beam
    reader (``models.data.beam``), so a row is judged alike by both.
    """

    def __init__(self, path: str, spec: TableSpec, names: Optional[Sequence[str]],
                 domains: Optional[Mapping[str, "Domain"]] = None):
        """
        Args:
          path: the file, named in errors.
          spec: how the table is parsed.
          names: the header's column names (None when the layout has no header).
          domains: field -> the schema's allowed range.

        Raises:
          DataError: the header lacks a required column.
        """
        self.path, self.spec = path, spec
        self.domains = dict(domains or {}) if spec.checked else {}
        self.labels = {n: spec.columns.get(n, n) for n, _ in spec.fields}
        if spec.header:
            names = [n.strip() for n in names or ()]
            missing = [self.labels[n] for n, _ in spec.fields
                       if self.labels[n] not in names and n not in spec.optional]
            if missing:
                raise DataError(
                    f"{path}:1: missing required column(s) {missing}; the header has {names}. "
                    f"Add the column(s) or rename the header."
                )
            self.positions = {n: names.index(self.labels[n]) for n, _ in spec.fields
                              if self.labels[n] in names}
            self.width, self.what = len(names), f"the header has {len(names)}"
        else:
            self.positions = {n: i for i, (n, _) in enumerate(spec.fields)}
            self.width, self.what = len(spec.fields), f"this layout has {len(spec.fields)}"
        self.parsers = dict(spec.fields)

    def parse(self, number: int, cells: Sequence[str]) -> Tuple[Optional[dict], Optional[BadRow]]:
        """(row, None) for a valid record, (None, BadRow) otherwise."""
        if len(cells) > self.width:
            return None, BadRow(self.path, number, f"column {self.width + 1}",
                                f"the row has {len(cells)} field(s), {self.what}"
                                + ("; quote values that contain the delimiter" if self.spec.header else ""))
        row = {}
        for name, _ in self.spec.fields:
            if name not in self.positions:
                row[name] = self.spec.defaults.get(name)
                continue
            pos = self.positions[name]
            if pos >= len(cells):
                return None, BadRow(self.path, number, self.labels[name],
                                    f"missing value (row has {len(cells)} field(s))")
            try:
                row[name] = self.parsers[name](cells[pos])
            except ValueError as e:
                return None, BadRow(self.path, number, self.labels[name], str(e))
            if name in self.domains:
                outside = self.domains[name].violation(row[name])
                if outside:
                    return None, BadRow(self.path, number, self.labels[name], outside)
        return row, None


def read_table(
    path: str,
    spec: TableSpec,
    report: ValidationReport,
    max_bad_fraction: float,
    *,
    row_check: Optional[Callable[[dict], Optional[Tuple[str, str]]]] = None,
    domains: Optional[Mapping[str, "Domain"]] = None,
) -> Dict[str, List[object]]:
    """Reads a delimited file into validated columns, in memory.

    Args:
      path: the file.
      spec: how it is parsed.
      report: collects skipped rows and row counts.
      max_bad_fraction: allowed share of invalid rows (0: none allowed).
      row_check: a check across fields of a parsed row; returns
        (field, reason) for a bad row.
      domains: field -> the schema's allowed range; values outside are invalid rows.

    Returns:
      Column name -> list of parsed values, one per valid row.

    Raises:
      DataError: the file is missing, empty, not in its encoding, lacks a
        required column, or has more invalid rows than allowed.
    """
    if not tf.io.gfile.exists(path):
        raise DataError(f"{path}: file not found.")
    text = _read_text(path, spec.encoding)
    if not text.strip():
        raise DataError(f"{path}: the file is empty; it needs at least one data row.")
    records = _records(text, spec.delimiter, quoted=spec.header)
    parser = RowParser(path, spec, next(records)[1] if spec.header else None, domains)
    columns: Dict[str, List[object]] = {n: [] for n, _ in spec.fields}
    first_line: Dict[object, int] = {}
    bad: List[BadRow] = []
    total = 0
    for number, cells in records:
        total += 1
        row, problem = parser.parse(number, cells)
        if problem is None and row_check is not None:
            found = row_check(row)
            if found:
                problem = BadRow(path, number, found[0], found[1])
        if problem is None and spec.unique is not None:
            if row[spec.unique] in first_line:
                problem = errors.repeated_id(path, number, spec.unique, row[spec.unique],
                                      first_line[row[spec.unique]])
            else:
                first_line[row[spec.unique]] = number
        if problem is not None:
            bad.append(problem)
            continue
        for name, value in row.items():
            columns[name].append(value)
    if total == 0:
        raise DataError(errors.no_rows(path))
    report.rows_read[path] = total
    message = errors.over_budget(path, bad, len(bad), total, max_bad_fraction)
    if message:
        raise DataError(message)
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
