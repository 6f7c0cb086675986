"""The interactions' joins, per-user timelines and the split by time, and the catalogue.

Interactions meet their item in a side input (a catalogue every worker can hold) or a
CoGroupByKey on the item, and their user in a CoGroupByKey on the user, where the user's
timeline is sorted (timestamp, then file line), split by time (``splits.held_out``, the
in-memory reader's rule) and turned into examples with the history before each interaction.

Both read one folder or a window of span folders (``models/data/spans.py``), oldest first: each
span's tables are read where they lie; a row is named by (span, line), so a problem names its own
file; a user's timeline runs across spans; an item or user listed in several spans takes the
newest span's row.
"""

from __future__ import annotations

import dataclasses
from typing import Dict, List, Sequence, Tuple, Union

import apache_beam as beam
import numpy as np

from models import features, wire
from models.data import errors, examples, layouts, splits
from models.data.beam import files, rows
from models.data.beam.report import Problems, TimeRange, collect
from models.data.config import DataConfig
from models.data.errors import BadRow
from models.data.layouts import Table


def _unknown_id(interactions_paths: Sequence[str], number: Tuple[int, int], kind: str, value: str,
                side_paths: Sequence[str]):
    """The BadRow (on the 'bad' output) of an interaction (``number``: its span and line) naming
    a user or item absent from the side tables; the message is the in-memory reader's and names
    the interaction's own span's files."""
    field = features.USER_ID if kind == "user" else features.ITEM_ID
    span, line = number
    return beam.pvalue.TaggedOutput(rows.BAD, BadRow(
        interactions_paths[span], line, field, errors.unknown_id(kind, value, side_paths[span])))


def _event(number: Tuple[int, int], row: dict, item_fields: Dict[str, bytes]):
    """(user_id, (timestamp, line, item_id, rating, the item's serialized features, or None when
    the timelines look them up in the side input))."""
    return row[features.USER_ID], (row[features.TIMESTAMP], number, row[features.ITEM_ID],
                                   row[features.RATING], item_fields)


class _JoinItem(beam.DoFn):
    """(item_id, {inter: [((span, line), row)], item: [features]}) -> (user_id, event), or BadRows."""

    def __init__(self, interactions_paths: Sequence[str], items_paths: Sequence[str]):
        self._inter_path, self._path = interactions_paths, items_paths

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
    """((span, line), row) -> (user_id, event) with the item's features from a side input, or a
    BadRow."""

    def __init__(self, interactions_paths: Sequence[str], items_paths: Sequence[str]):
        self._inter_path, self._path = interactions_paths, items_paths

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
    of up to MAX_HISTORY earlier items; the split per ``strategy`` by ``splits.held_out``."""

    def __init__(self, interactions_paths: Sequence[str], users_paths: Sequence[str],
                 users_present: bool, eval_fraction: float, strategy: str):
        self._inter_path, self._users_path = interactions_paths, users_paths
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
        is_eval = splits.held_out([e[0] for e in events], self._fraction, self._strategy, cut)
        user_fields = examples.user_fields(user_id, user)
        # Each item's BytesList entry is encoded once; a history joins the latest entries.
        timeline: List[bytes] = []
        for k, (timestamp, _, item_id, rating, item) in enumerate(events):
            history = wire.bytes_list_of_entries(b"".join(timeline[max(0, k - features.MAX_HISTORY):k]))
            example = examples.event_example(user_fields, item if item is not None else items[item_id],
                                             timestamp, rating, history)
            timeline.append(wire.value(item_id.encode("utf-8")))
            yield beam.pvalue.TaggedOutput(features.EVAL if is_eval[k] else features.TRAIN, example)


class _TimeCut(beam.CombineFn):
    """The 'global' split's time cut (``splits.global_cut``), exact, from arrays of 8 bytes per
    interaction."""

    def __init__(self, eval_fraction: float):
        self._fraction = eval_fraction

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
        return splits.global_cut(_int64s(acc), self._fraction)


def _int64s(acc: list) -> np.ndarray:
    """An accumulator (ints and int64 arrays) as one int64 array."""
    arrays = [a for a in acc if isinstance(a, np.ndarray)]
    loose = [a for a in acc if not isinstance(a, np.ndarray)]
    return np.concatenate(arrays + [np.asarray(loose, np.int64)])


@dataclasses.dataclass
class Interactions:
    """The interactions ExampleGen's outputs: serialized examples per split, and what to check."""

    splits: Dict[str, beam.PCollection]
    problems: Problems


def _tables(folders: Union[str, Sequence[str]]) -> List[Dict[str, Table]]:
    """Each folder's tables, oldest span first; the spans of a window must agree on which side
    tables they have, so that every interaction is judged by the same rule.

    Raises:
      DataError: a span with a users or items file while another has none.
    """
    folders = [folders] if isinstance(folders, str) else list(folders)
    found = [layouts.tables_of(folder) for folder in folders]
    for name in (layouts.USERS, layouts.ITEMS):
        present = [f[name].present for f in found]
        if any(present) and not all(present):
            lacking = folders[present.index(False)]
            having = folders[present.index(True)]
            raise errors.DataError(f"{lacking}: no {name} file, while the span {having} has one; "
                                   f"every span of a window has the same files (copy the latest "
                                   f"{name} file into it, or read a window without it: --spans)")
    return found


def _label(k: int, count: int, label: str) -> str:
    return f"Span{k}{label}" if count > 1 else label


def _numbered(read_rows, k: int, label: str):
    """(line, row) -> ((span, line), row): rows of different spans stay apart by their file."""
    return read_rows | f"{label}Numbered" >> beam.MapTuple(lambda line, row, k=k: ((k, line), row))


def _newest(side, label: str):
    """One (id, features) per id from [(id, features)] of each span, oldest first: the newest
    span's row."""
    if len(side) == 1:
        return side[0]
    tagged = [table | f"Span{k}{label}Tag" >> beam.MapTuple(lambda i, f, k=k: (i, (k, f)))
              for k, table in enumerate(side)]
    return (tagged
            | f"{label}AllSpans" >> beam.Flatten()
            | f"{label}BySpan" >> beam.GroupByKey()
            | f"{label}Newest" >> beam.MapTuple(lambda i, rows_: (i, max(rows_, key=lambda r: r[0])[1])))


def interactions(pipeline, folders: Union[str, Sequence[str]], eval_fraction: float, strategy: str,
                 domains, range_bytes: int = DataConfig.range_bytes,
                 side_input_bytes: int = DataConfig.side_input_bytes) -> Interactions:
    """Adds the interactions ExampleGen's steps to ``pipeline``: train and eval examples of one
    folder or of a window of span folders (oldest first).

    Args:
      side_input_bytes: an items file up to this size is joined as a side input every worker
        holds; a larger one by a CoGroupByKey on the item.
    """
    found = _tables(folders)
    count = len(found)
    users_t = [f[layouts.USERS] for f in found]
    items_t = [f[layouts.ITEMS] for f in found]
    inter_t = [f[layouts.INTERACTIONS] for f in found]
    inter_paths, items_paths, users_paths = ([t.path for t in ts] for ts in (inter_t, items_t, users_t))
    problems = Problems([], [], [], paths=[t.path for ts in zip(users_t, items_t, inter_t)
                                           for t in ts if t.present])
    spans_rows = []
    for k, table in enumerate(inter_t):
        label = _label(k, count, "Interactions")
        read = rows.read_table(pipeline, table, domains, label, range_bytes)
        collect(problems, read)
        spans_rows.append(_numbered(read.rows, k, label))
    inter_rows = (spans_rows[0] if count == 1
                  else spans_rows | "InteractionsAllSpans" >> beam.Flatten())
    item_table = None
    if items_t[0].present:
        items = _newest([_items(pipeline, f, domains, problems, _label(k, count, ""))
                         for k, f in enumerate(found)], "Items")
        if sum(files.file_size(t.path) for t in items_t) <= side_input_bytes:
            # A catalogue every worker can hold: its serialized features as a side input, so
            # the interactions meet their item where they are parsed, without a shuffle.
            encoded = items | "EncodeItems" >> beam.MapTuple(lambda i, f: (i, examples.item_fields(i, f)))
            item_table = beam.pvalue.AsDict(encoded)
            known = inter_rows | "KnownItems" >> beam.ParDo(
                _LookupItem(inter_paths, items_paths), item_table).with_outputs(rows.BAD, main="events")
        else:
            # A larger catalogue: interactions and items meet in a CoGroupByKey on the item.
            by_item = inter_rows | "ByItem" >> beam.Map(lambda p: (p[1][features.ITEM_ID], p))
            known = ({"inter": by_item, "item": items}
                     | "JoinItems" >> beam.CoGroupByKey()
                     | "KnownItems" >> beam.ParDo(_JoinItem(inter_paths, items_paths)).with_outputs(
                         rows.BAD, main="events"))
        problems.bad.append(known[rows.BAD])
        events = known.events
    else:
        events = inter_rows | "UnknownItems" >> beam.Map(_with_unknown_item)
    users = (_newest([_side(pipeline, t, domains, _label(k, count, "Users"), problems)
                      for k, t in enumerate(users_t)], "Users") if users_t[0].present
             else pipeline | "NoUsers" >> beam.Create([]))
    cut = None
    if strategy == "global":
        cut = beam.pvalue.AsSingleton(
            events
            | "Times" >> beam.Map(lambda e: e[1][0])
            | "TimeCut" >> beam.CombineGlobally(_TimeCut(eval_fraction)))
    timelines = ({"inter": events, "user": users}
                 | "JoinUsers" >> beam.CoGroupByKey()
                 | "Timelines" >> beam.ParDo(
                     _Timeline(inter_paths, users_paths, users_t[0].present, eval_fraction, strategy),
                     cut=cut, items=item_table).with_outputs(rows.BAD, features.TRAIN, features.EVAL))
    problems.bad.append(timelines[rows.BAD])
    problems.times = (events
                      | "EventTimes" >> beam.Map(lambda e: e[1][0])
                      | "TimeRange" >> beam.CombineGlobally(TimeRange()))
    return Interactions({features.TRAIN: timelines[features.TRAIN],
                         features.EVAL: timelines[features.EVAL]}, problems)


def catalogue(pipeline, folders: Union[str, Sequence[str]], domains,
              range_bytes: int = DataConfig.range_bytes):
    """Adds the catalogue ExampleGen's steps: (serialized item examples, Problems) of one folder
    or a window of span folders. Only the items files are read (the newest span's row of each
    item); without them (canonical layout) the items of the interactions."""
    found = _tables(folders)
    count = len(found)
    items_t = [f[layouts.ITEMS] for f in found]
    if items_t[0].present:
        problems = Problems([], [], [], paths=[t.path for t in items_t])
        items = _newest([_items(pipeline, f, domains, problems, _label(k, count, ""))
                         for k, f in enumerate(found)], "Items")
    else:
        problems = Problems([], [], [], paths=[f[layouts.INTERACTIONS].path for f in found])
        ids = []
        for k, f in enumerate(found):
            label = _label(k, count, "Interactions")
            inter = rows.read_table(pipeline, f[layouts.INTERACTIONS], domains, label, range_bytes)
            collect(problems, inter)
            ids.append(inter.rows | f"{label}ItemIds" >> beam.Map(lambda p: p[1][features.ITEM_ID]))
        items = ((ids[0] if count == 1 else ids | "ItemIdsAllSpans" >> beam.Flatten())
                 | "Distinct" >> beam.Distinct()
                 | "Unknown" >> beam.Map(lambda i: (i, dict(layouts.UNKNOWN_ITEM))))
    return items | "ToExamples" >> beam.MapTuple(examples.catalogue_example), problems


def _items(pipeline, found: Dict[str, Table], domains, problems: Problems, prefix: str = ""):
    """(item_id, features) of the items file, each item's tags (``layouts.item_tags``) joined
    in where the layout has a tags file: the in-memory reader's items."""
    items = _side(pipeline, found[layouts.ITEMS], domains, f"{prefix}Items", problems)
    tags_t = found.get(layouts.TAGS)
    if tags_t is None or not tags_t.present:
        return items
    read = rows.read_table(pipeline, tags_t, domains, f"{prefix}Tags")
    collect(problems, read)
    problems.paths.append(tags_t.path)
    tags = (read.rows
            | f"{prefix}TagsByItem" >> beam.Map(lambda p: (p[1][features.ITEM_ID], p[1][layouts.TAG]))
            | f"{prefix}GroupTags" >> beam.GroupByKey())
    return ({"item": items, "tags": tags}
            | f"{prefix}JoinTags" >> beam.CoGroupByKey()
            | f"{prefix}WithTags" >> beam.FlatMap(_with_tags))


def _with_tags(group):
    """(item_id, {'item': [features] or [], 'tags': [[tag, ...]] or []}) -> (item_id, features
    with its tags); tags of an item the catalogue lacks describe nothing."""
    item_id, joined = group
    given = [tag for tags in joined["tags"] for tag in tags]
    tags = layouts.item_tags(given) if given else None
    for fields in joined["item"]:
        yield item_id, {**fields, features.TAGS: tags} if tags is not None else fields


def _side(pipeline, table: Table, domains, label: str, problems: Problems):
    read = rows.read_table(pipeline, table, domains, label)
    collect(problems, read)
    unique, repeated = rows.unique_rows(read, table, label)
    problems.bad.append(repeated)
    return unique
