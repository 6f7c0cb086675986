"""The ExampleGens' reading as Beam transforms: nothing of the data passes through the driver.

Files are read with Beam's filesystems (local, GCS, S3, HDFS) in byte ranges that
workers read in parallel; a first pass counts the newlines of every range, so each
row keeps the line an editor shows (errors name file and line, as the in-memory
reader's do). Rows are parsed and validated where they are read, with the same
``tables.RowParser`` as ``models.data.readers``. Side tables (users, items) are
deduplicated with a GroupByKey on the id; interactions meet their item with a
CoGroupByKey on the item and their user with one on the user, where the user's
timeline is sorted (timestamp, then file line), split by time and turned into
examples with the history before each interaction. Bad rows, row counts, fatal
problems (encoding) and the time range become one small validation report that
the executor reads after the pipeline (``check``): over the bad-row budget, the
run stops with file, line and field.

Interaction files are read one record per line (a quoted value cannot span lines
there); users and items files with a header are CSV read whole by one worker, so a
quoted title may hold a newline.
"""

from __future__ import annotations

import csv
import dataclasses
import json
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import apache_beam as beam
import numpy as np
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from models import features, wire
from models.data import examples, layouts, readers, tables
from models.data.errors import BadRow, DataError, ValidationReport
from models.data.layouts import Table

# Bytes per range of an interactions file read by one worker.
RANGE_BYTES = 32 << 20
# Items files up to this size are joined as a side input (about 1M items of MovieLens shape).
SIDE_INPUT_BYTES = 64 << 20
_FATAL, _BAD = "fatal", "bad"


def _open(path: str):
    return FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED)


def _size(path: str) -> int:
    return FileSystems.match([path])[0].metadata_list[0].size_in_bytes


def header(table: Table) -> Optional[List[str]]:
    """The column names of a table with a header (read here: one line, not data).

    Raises:
      DataError: the file is missing, empty, or its first line is not in its encoding.
    """
    if not FileSystems.exists(table.path):
        raise DataError(f"{table.path}: file not found.")
    with _open(table.path) as f:
        first = f.readline()
        rest = first + f.read(1 << 16) if not first.strip() else first
    if not rest.strip():
        raise DataError(f"{table.path}: the file is empty; it needs at least one data row.")
    tables.check_head(table.path, rest[:4], table.spec.encoding)
    if not table.spec.header:
        return None
    text = _decode(table.path, first, 1, 0, table.spec.encoding).lstrip("\ufeff")
    return table.spec.split_line(text.rstrip("\r\n"))


def survey(folder: str) -> Dict[str, object]:
    """What a run can know of ``folder`` without reading its rows: the layout, each file's size
    and header (a missing file or column stops here), and the catalogue size (the items file's
    non-blank lines, counted when the file is at most 16 MB; None without one or above that,
    where no list length comes near it).

    Raises:
      DataError: no known layout, a required file missing or empty, a required column missing.
    """
    layout = layouts.detect(folder)
    found = layouts.tables_of(folder, layout)
    sizes = {}
    for table in found.values():
        if table.present:
            tables.RowParser(table.path, table.spec, header(table))
            sizes[table.path] = _size(table.path)
    items = found[layouts.ITEMS]
    count = None
    if items.present and sizes[items.path] <= 16 << 20:
        count = 0
        with _open(items.path) as f:
            for line in f:
                count += bool(line.strip())
        count -= int(items.spec.header)
    return {"layout": layout, "sizes": sizes, "items": count}


def _decode(path: str, raw: bytes, line: int, offset: int, encoding: str) -> str:
    if offset == 0:
        tables.check_head(path, raw[:4], encoding)
    try:
        return raw.decode(encoding)
    except UnicodeDecodeError as e:
        raise tables.decode_error(path, line, offset + e.start, raw[e.start], encoding) from None


def _ranges(path: str, whole: bool, range_bytes: int) -> List[Tuple[int, int]]:
    size = _size(path)
    if whole or size <= range_bytes:
        return [(0, size)]
    return [(start, min(start + range_bytes, size)) for start in range(0, size, range_bytes)]


def _count_newlines(span: Tuple[int, int], path: str) -> Tuple[int, int]:
    start, end = span
    count, position = 0, start
    with _open(path) as f:
        f.seek(start)
        while position < end:
            block = f.read(min(8 << 20, end - position))
            if not block:
                break
            count += block.count(b"\n")
            position += len(block)
    return start, count


class _Records(beam.DoFn):
    """A byte range of a file -> (line, cells) of each record that starts in it."""

    def __init__(self, table: Table, whole: bool):
        self._table, self._whole = table, whole

    def process(self, span, newlines):
        start, end = span
        spec, path = self._table.spec, self._table.path
        line = 1 + sum(count for begin, count in newlines if begin < start)
        try:
            with _open(path) as f:
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
            yield beam.pvalue.TaggedOutput(_FATAL, str(e))

    def _lines(self, f, position: int, end: int, line: int) -> Iterator[Tuple[int, str]]:
        encoding = self._table.spec.encoding
        while position < end:
            raw = f.readline()
            if not raw:
                return
            text = _decode(self._table.path, raw, line, position, encoding)
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
            yield beam.pvalue.TaggedOutput(_BAD, problem)
        else:
            yield number, self._table.finish(row)


@dataclasses.dataclass
class Read:
    """A table read in a pipeline: valid rows, bad rows, fatal problems and the row count."""

    rows: beam.PCollection  # (line, canonical row)
    bad: beam.PCollection  # BadRow
    fatal: beam.PCollection  # str
    total: beam.PCollection  # (path, count of records)


def read_table(pipeline, table: Table, domains, label: str, range_bytes: int = RANGE_BYTES) -> Read:
    """Adds the reading and parsing of ``table`` to ``pipeline``.

    Raises:
      DataError: the file is missing, empty, or its header lacks a required column (all known
        before any data is read).
    """
    names = header(table)
    tables.RowParser(table.path, table.spec, names)  # a missing column stops here, by name
    whole = table.spec.quoted  # CSV side tables: a quoted value may hold a newline
    spans = pipeline | f"{label}Ranges" >> beam.Create(_ranges(table.path, whole, range_bytes))
    newlines = spans | f"{label}Newlines" >> beam.Map(_count_newlines, table.path)
    records = (spans
               | f"{label}Spread" >> beam.Reshuffle()
               | f"{label}Read" >> beam.ParDo(_Records(table, whole), beam.pvalue.AsList(newlines))
               .with_outputs(_FATAL, main="records"))
    parsed = (records.records
              | f"{label}Parse" >> beam.ParDo(_Parse(table, names, domains)).with_outputs(_BAD, main="rows"))
    total = (records.records
             | f"{label}Count" >> beam.combiners.Count.Globally()
             | f"{label}Total" >> beam.Map(lambda n, path: (path, n), table.path))
    return Read(parsed.rows, parsed[_BAD], records[_FATAL], total)


class _FirstListed(beam.DoFn):
    """(id, [(line, row)]) -> (id, row) of the first line; later lines are BadRows."""

    def __init__(self, path: str, field: str):
        self._path, self._field = path, field

    def process(self, group):
        key, listed = group
        listed = sorted(listed, key=lambda pair: pair[0])
        first, row = listed[0]
        for number, _ in listed[1:]:
            yield beam.pvalue.TaggedOutput(_BAD, tables.repeated_id(self._path, number, self._field,
                                                                    key, first))
        yield key, {k: v for k, v in row.items() if k != self._field}


def unique_rows(read: Read, table: Table, label: str):
    """(id, features) of each id's first line; the repeats go to ``bad`` (returned)."""
    field = table.spec.unique
    out = (read.rows
           | f"{label}ById" >> beam.Map(lambda pair, f: (pair[1][f], pair), field)
           | f"{label}Group" >> beam.GroupByKey()
           | f"{label}First" >> beam.ParDo(_FirstListed(table.path, field)).with_outputs(_BAD, main="rows"))
    return out.rows, out[_BAD]


# --- interactions: join, split by time, histories ---------------------------------------


def _unknown_id(interactions_path: str, number: int, kind: str, value: str, side_path: str):
    """The BadRow (on the 'bad' output) of an interaction naming a user or item absent from the
    side table; the message is the in-memory reader's."""
    field = features.USER_ID if kind == "user" else features.ITEM_ID
    return beam.pvalue.TaggedOutput(_BAD, BadRow(interactions_path, number, field,
                                                 readers.unknown_id(kind, value, side_path)))


def _event(number: int, row: dict, item_fields: Dict[str, bytes]):
    """(user_id, (timestamp, line, item_id, rating, the item's serialized features, or None when
    the timelines look them up in the side input))."""
    return row[features.USER_ID], (row[features.TIMESTAMP], number, row[features.ITEM_ID],
                                   row[features.RATING], item_fields)


class _JoinItem(beam.DoFn):
    """(item_id, {inter: [(line, row)], item: [features]}) -> (user_id, event), or BadRows."""

    def __init__(self, interactions_path: str, items_path: str):
        self._inter_path, self._path = interactions_path, items_path

    def process(self, group):
        item_id, joined = group
        found = list(joined["item"])
        fields = examples.item_fields(item_id, found[0]) if found else None  # once per item
        for number, row in joined["inter"]:
            if fields is None:
                yield _unknown_id(self._inter_path, number, "item", item_id, self._path)
            else:
                yield _event(number, row, fields)


class _LookupItem(beam.DoFn):
    """(line, row) -> (user_id, event) with the item's features from a side input, or a BadRow."""

    def __init__(self, interactions_path: str, items_path: str):
        self._inter_path, self._path = interactions_path, items_path

    def process(self, pair, items):
        number, row = pair
        if row[features.ITEM_ID] not in items:
            yield _unknown_id(self._inter_path, number, "item", row[features.ITEM_ID], self._path)
        else:
            # The features are looked up again after the shuffle: only the id travels.
            yield _event(number, row, None)


def _with_unknown_item(pair):
    number, row = pair
    return _event(number, row, examples.item_fields(row[features.ITEM_ID], layouts.UNKNOWN_ITEM))


class _Timeline(beam.DoFn):
    """A user's interactions -> tagged (split, serialized example), oldest first; histories
    of up to MAX_HISTORY earlier items; the split per ``strategy`` (see splits.temporal_split)."""

    def __init__(self, interactions_path: str, users_path: str, users_present: bool,
                 eval_fraction: float, strategy: str):
        self._inter_path, self._users_path = interactions_path, users_path
        self._users_present = users_present
        self._fraction, self._strategy = eval_fraction, strategy

    def process(self, group, cut=None, items=None):
        user_id, joined = group
        users = list(joined["user"])
        events = sorted(joined["inter"], key=lambda e: (e[0], e[1]))
        if not users and self._users_present:
            for _, number, _, _, _ in events:
                yield _unknown_id(self._inter_path, number, "user", user_id, self._users_path)
            return
        user = users[0] if users else dict(layouts.UNKNOWN_USER)
        n = len(events)
        if self._strategy == "global":
            is_eval = [timestamp > cut for timestamp, *_ in events]
        else:
            n_eval = max(1, int(round(n * self._fraction))) if n >= 2 else 0
            is_eval = [k >= n - n_eval for k in range(n)]
        user_fields = examples.user_fields(user_id, user)
        # Each item's BytesList entry is encoded once; a history joins the latest entries.
        timeline: List[bytes] = []
        for k, (timestamp, _, item_id, rating, item) in enumerate(events):
            history = wire.bytes_list_of_entries(b"".join(timeline[max(0, k - features.MAX_HISTORY):k]))
            example = examples.event_example(user_fields, item if item is not None else items[item_id],
                                             timestamp, rating, history)
            timeline.append(wire.value(item_id.encode("utf-8")))
            yield beam.pvalue.TaggedOutput(features.EVAL if is_eval[k] else features.TRAIN, example)


class _ExactQuantile(beam.CombineFn):
    """The exact ``q`` quantile of int64 values (numpy's linear interpolation), from arrays
    of 8 bytes per value: the 'global' split's time cut."""

    def __init__(self, q: float):
        self._q = q

    def create_accumulator(self):
        return []

    def add_input(self, acc, value):
        acc.append(int(value))
        return acc

    def merge_accumulators(self, accs):
        return [np.concatenate([_int64s(acc) for acc in accs])]

    def compact(self, acc):
        return [_int64s(acc)]

    def extract_output(self, acc):
        values = _int64s(acc)
        return float(np.quantile(values, self._q)) if len(values) else 0.0


def _int64s(acc: list) -> np.ndarray:
    """An accumulator (ints and int64 arrays) as one int64 array."""
    arrays = [a for a in acc if isinstance(a, np.ndarray)]
    loose = [a for a in acc if not isinstance(a, np.ndarray)]
    return np.concatenate(arrays + [np.asarray(loose, np.int64)])


@dataclasses.dataclass
class Interactions:
    """The interactions ExampleGen's outputs: serialized examples per split, and what to check."""

    splits: Dict[str, beam.PCollection]
    problems: "Problems"


@dataclasses.dataclass
class Problems:
    """Every table's bad rows, fatal problems and row counts, and the interactions' time range."""

    bad: List[beam.PCollection]
    fatal: List[beam.PCollection]
    totals: List[beam.PCollection]
    times: Optional[beam.PCollection] = None
    paths: Sequence[str] = ()


def interactions(pipeline, folder: str, eval_fraction: float, strategy: str, domains,
                 range_bytes: int = RANGE_BYTES,
                 side_input_bytes: int = SIDE_INPUT_BYTES) -> Interactions:
    """Adds the interactions ExampleGen's steps to ``pipeline``: train and eval examples.

    Args:
      side_input_bytes: an items file up to this size is joined as a side input every worker
        holds; a larger one by a CoGroupByKey on the item.
    """
    found = layouts.tables_of(folder)
    users_t, items_t, inter_t = found[layouts.USERS], found[layouts.ITEMS], found[layouts.INTERACTIONS]
    problems = Problems([], [], [], paths=[t.path for t in (users_t, items_t, inter_t) if t.present])
    inter = read_table(pipeline, inter_t, domains, "Interactions", range_bytes)
    _collect(problems, inter)
    item_table = None
    if items_t.present:
        items = _side(pipeline, items_t, domains, "Items", problems)
        if _size(items_t.path) <= side_input_bytes:
            # A catalogue every worker can hold: its serialized features as a side input, so
            # the interactions meet their item where they are parsed, without a shuffle.
            encoded = items | "EncodeItems" >> beam.MapTuple(lambda i, f: (i, examples.item_fields(i, f)))
            item_table = beam.pvalue.AsDict(encoded)
            known = inter.rows | "KnownItems" >> beam.ParDo(
                _LookupItem(inter_t.path, items_t.path), item_table).with_outputs(_BAD, main="events")
        else:
            # A larger catalogue: interactions and items meet in a CoGroupByKey on the item.
            by_item = inter.rows | "ByItem" >> beam.Map(lambda p: (p[1][features.ITEM_ID], p))
            known = ({"inter": by_item, "item": items}
                     | "JoinItems" >> beam.CoGroupByKey()
                     | "KnownItems" >> beam.ParDo(_JoinItem(inter_t.path, items_t.path)).with_outputs(
                         _BAD, main="events"))
        problems.bad.append(known[_BAD])
        events = known.events
    else:
        events = inter.rows | "UnknownItems" >> beam.Map(_with_unknown_item)
    users = (_side(pipeline, users_t, domains, "Users", problems) if users_t.present
             else pipeline | "NoUsers" >> beam.Create([]))
    cut = None
    if strategy == "global":
        cut = beam.pvalue.AsSingleton(
            events
            | "Times" >> beam.Map(lambda e: e[1][0])
            | "TimeCut" >> beam.CombineGlobally(_ExactQuantile(1.0 - eval_fraction)))
    timelines = ({"inter": events, "user": users}
                 | "JoinUsers" >> beam.CoGroupByKey()
                 | "Timelines" >> beam.ParDo(
                     _Timeline(inter_t.path, users_t.path, users_t.present, eval_fraction, strategy),
                     cut=cut, items=item_table).with_outputs(_BAD, features.TRAIN, features.EVAL))
    problems.bad.append(timelines[_BAD])
    problems.times = (events
                      | "EventTimes" >> beam.Map(lambda e: e[1][0])
                      | "TimeRange" >> beam.CombineGlobally(_Range()))
    return Interactions({features.TRAIN: timelines[features.TRAIN],
                         features.EVAL: timelines[features.EVAL]}, problems)


def catalogue(pipeline, folder: str, domains, range_bytes: int = RANGE_BYTES):
    """Adds the catalogue ExampleGen's steps: (serialized item examples, Problems). Only the
    items file is read; without one (canonical layout) the items of the interactions."""
    found = layouts.tables_of(folder)
    items_t = found[layouts.ITEMS]
    problems = Problems([], [], [], paths=[items_t.path] if items_t.present else
                        [found[layouts.INTERACTIONS].path])
    if items_t.present:
        items = _side(pipeline, items_t, domains, "Items", problems)
    else:
        inter = read_table(pipeline, found[layouts.INTERACTIONS], domains, "Interactions", range_bytes)
        _collect(problems, inter)
        items = (inter.rows
                 | "ItemIds" >> beam.Map(lambda p: p[1][features.ITEM_ID])
                 | "Distinct" >> beam.Distinct()
                 | "Unknown" >> beam.Map(lambda i: (i, dict(layouts.UNKNOWN_ITEM))))
    return items | "ToExamples" >> beam.MapTuple(examples.catalogue_example), problems


def _side(pipeline, table: Table, domains, label: str, problems: Problems):
    read = read_table(pipeline, table, domains, label)
    _collect(problems, read)
    rows, repeated = unique_rows(read, table, label)
    problems.bad.append(repeated)
    return rows


def _collect(problems: Problems, read: Read) -> None:
    problems.bad.append(read.bad)
    problems.fatal.append(read.fatal)
    problems.totals.append(read.total)


class _Range(beam.CombineFn):
    """(min, max, count) of int values."""

    def create_accumulator(self):
        return (None, None, 0)

    def add_input(self, acc, value):
        low, high, n = acc
        return (value if low is None else min(low, value), value if high is None else max(high, value),
                n + 1)

    def merge_accumulators(self, accs):
        out = (None, None, 0)
        for low, high, n in accs:
            if n:
                out = (low if out[0] is None else min(out[0], low),
                       high if out[1] is None else max(out[1], high), out[2] + n)
        return out

    def extract_output(self, acc):
        return acc


# --- the validation report ---------------------------------------------------------------

_LISTED = 10


def write_report(pipeline, problems: Problems, path: str) -> None:
    """Adds the writing of the validation report (JSON at ``path``): per file the rows read,
    the count of bad rows and the first of them by line; fatal problems; the time range."""
    label = "Report"
    bad = (problems.bad | f"{label}Bad" >> beam.Flatten()
           | f"{label}ByFile" >> beam.Map(lambda b: (b.path, b)))
    counts = bad | f"{label}CountBad" >> beam.combiners.Count.PerKey()
    first = bad | f"{label}FirstBad" >> beam.combiners.Top.PerKey(
        _LISTED, key=lambda b: -b.line)
    totals = problems.totals | f"{label}Totals" >> beam.Flatten()
    fatal = problems.fatal | f"{label}Fatal" >> beam.Flatten()
    side = dict(counts=beam.pvalue.AsDict(counts), first=beam.pvalue.AsDict(first),
                totals=beam.pvalue.AsDict(totals), fatal=beam.pvalue.AsList(fatal))
    if problems.times is not None:
        side["times"] = beam.pvalue.AsSingleton(problems.times)
    _ = (pipeline
         | f"{label}Start" >> beam.Create([path])
         | f"{label}Write" >> beam.Map(_write_report, paths=list(problems.paths), **side))


def _write_report(path, paths, counts, first, totals, fatal, times=None):
    report = {
        "files": [{"path": p, "rows": int(totals.get(p, 0)), "bad": int(counts.get(p, 0)),
                   "first_bad": [dataclasses.asdict(b) for b in sorted(first.get(p, []),
                                                                       key=lambda b: b.line)]}
                  for p in paths],
        "fatal": sorted(fatal),
        "times": list(times) if times is not None else None,
    }
    with FileSystems.create(path) as f:
        f.write(json.dumps(report, indent=1).encode("utf-8"))
    return path


def check(path: str, max_bad_fraction: float) -> ValidationReport:
    """Reads the validation report the pipeline wrote.

    Returns:
      The report (rows read, skipped rows, warnings), for the log.

    Raises:
      DataError: a fatal problem, a file without data rows, or more bad rows than allowed; the
        message names file, line and field, as the in-memory reader's.
    """
    with _open(path) as f:
        report = json.loads(f.read().decode("utf-8"))
    if report["fatal"]:
        raise DataError(report["fatal"][0])
    out = ValidationReport()
    for entry in report["files"]:
        if entry["rows"] == 0:
            raise DataError(tables.no_rows(entry["path"]))
        listed = [BadRow(**b) for b in entry["first_bad"]]
        message = tables.over_budget(entry["path"], listed, entry["bad"], entry["rows"],
                                     max_bad_fraction)
        if message:
            raise DataError(message)
        out.rows_read[entry["path"]] = entry["rows"]
        out.skipped.extend(listed)
        out.unlisted += entry["bad"] - len(listed)
    if report["times"] and report["times"][2]:
        low, high, n = report["times"]
        out.warnings.extend(readers.time_warnings(low, high, n))
    return out
