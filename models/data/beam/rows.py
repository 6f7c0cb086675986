"""A table read and parsed where it lies: byte ranges -> records -> canonical rows.

Rows are parsed and validated where they are read, with the same ``tables.RowParser`` as the
in-memory reader (``models.data.readers``). Interaction files are read one record per line (a
quoted value cannot span lines there); users and items files with a header are CSV read
whole by one worker, so a quoted title may hold a newline. Side tables (users, items) are
deduplicated with a GroupByKey on the id.
"""

from __future__ import annotations

import csv
import dataclasses
from typing import Iterator, List, Optional, Sequence, Tuple

import apache_beam as beam

from models.data import errors, tables
from models.data.beam import files
from models.data.config import DataConfig
from models.data.errors import DataError
from models.data.layouts import Table

# The tagged outputs of a read: problems of a whole file, and rows that failed validation.
FATAL, BAD = "fatal", "bad"


class _Records(beam.DoFn):
    """A byte range of a file -> (line, cells) of each record that starts in it."""

    def __init__(self, table: Table, whole: bool):
        self._table, self._whole = table, whole

    def process(self, span, newlines):
        start, end = span
        spec, path = self._table.spec, self._table.path
        line = 1 + sum(count for begin, count in newlines if begin < start)
        try:
            with files.open_file(path) as f:
                f.seek(max(0, start - 1))
                position = start
                if start > 0 and f.read(1) != b"\n":  # the line began in the range before
                    position += len(f.readline())
                    line += 1
                lines = self._lines(f, position, end, line)
                if self._whole:
                    yield from self._csv(lines)
                    return
                for number, text in lines:
                    if number == 1 and spec.header:
                        continue
                    if text.strip():
                        yield number, spec.split_line(text.rstrip("\r\n"))
        except DataError as e:
            yield beam.pvalue.TaggedOutput(FATAL, str(e))

    def _lines(self, f, position: int, end: int, line: int) -> Iterator[Tuple[int, str]]:
        encoding = self._table.spec.encoding
        while position < end:
            raw = f.readline()
            if not raw:
                return
            text = files.decode(self._table.path, raw, line, position, encoding)
            if position == 0:
                text = text.lstrip("\ufeff")
            yield line, text
            position += len(raw)
            line += 1

    def _csv(self, lines: Iterator[Tuple[int, str]]):
        """Records of a whole CSV file: a quoted value may span lines; a record is named by
        the line it starts on."""
        numbers: List[int] = []

        def text():
            for number, value in lines:
                numbers.append(number)
                yield value

        reader = csv.reader(text(), delimiter=self._table.spec.delimiter)
        consumed = 0
        for cells in reader:
            first = numbers[consumed]
            consumed = len(numbers)
            if first == 1 or not any(c.strip() for c in cells):
                continue
            yield first, cells


class _Parse(beam.DoFn):
    """(line, cells) -> (line, canonical row), or a BadRow on the 'bad' output."""

    def __init__(self, table: Table, names: Optional[Sequence[str]], domains):
        self._table, self._names, self._domains = table, names, domains
        self._parser = None

    def setup(self):
        self._parser = tables.RowParser(self._table.path, self._table.spec, self._names, self._domains)

    def process(self, record):
        number, cells = record
        row, problem = self._parser.parse(number, cells)
        if problem is not None:
            yield beam.pvalue.TaggedOutput(BAD, problem)
        else:
            yield number, self._table.finish(row)


@dataclasses.dataclass
class Read:
    """A table read in a pipeline: valid rows, bad rows, fatal problems and the row count."""

    rows: beam.PCollection  # (line, canonical row)
    bad: beam.PCollection  # BadRow
    fatal: beam.PCollection  # str
    total: beam.PCollection  # (path, count of records)


def read_table(pipeline, table: Table, domains, label: str,
               range_bytes: int = DataConfig.range_bytes) -> Read:
    """Adds the reading and parsing of ``table`` to ``pipeline``.

    Raises:
      DataError: the file is missing, empty, or its header lacks a required column (all known
        before any data is read).
    """
    names = files.header(table)
    tables.RowParser(table.path, table.spec, names)  # a missing column stops here, by name
    whole = table.spec.quoted  # CSV side tables: a quoted value may hold a newline
    spans = pipeline | f"{label}Ranges" >> beam.Create(files.ranges(table.path, whole, range_bytes))
    newlines = spans | f"{label}Newlines" >> beam.Map(files.count_newlines, table.path)
    records = (spans
               | f"{label}Spread" >> beam.Reshuffle()
               | f"{label}Read" >> beam.ParDo(_Records(table, whole), beam.pvalue.AsList(newlines))
               .with_outputs(FATAL, main="records"))
    parsed = (records.records
              | f"{label}Parse" >> beam.ParDo(_Parse(table, names, domains)).with_outputs(BAD, main="rows"))
    total = (records.records
             | f"{label}Count" >> beam.combiners.Count.Globally()
             | f"{label}Total" >> beam.Map(lambda n, path: (path, n), table.path))
    return Read(parsed.rows, parsed[BAD], records[FATAL], total)


class _FirstListed(beam.DoFn):
    """(id, [(line, row)]) -> (id, row) of the first line; later lines are BadRows."""

    def __init__(self, path: str, field: str):
        self._path, self._field = path, field

    def process(self, group):
        key, listed = group
        listed = sorted(listed, key=lambda pair: pair[0])
        first, row = listed[0]
        for number, _ in listed[1:]:
            yield beam.pvalue.TaggedOutput(BAD, errors.repeated_id(self._path, number, self._field,
                                                                    key, first))
        yield key, {k: v for k, v in row.items() if k != self._field}


def unique_rows(read: Read, table: Table, label: str):
    """(id, features) of each id's first line; the repeats go to ``bad`` (returned)."""
    field = table.spec.unique
    out = (read.rows
           | f"{label}ById" >> beam.Map(lambda pair, f: (pair[1][f], pair), field)
           | f"{label}Group" >> beam.GroupByKey()
           | f"{label}First" >> beam.ParDo(_FirstListed(table.path, field)).with_outputs(BAD, main="rows"))
    return out.rows, out[BAD]
