"""The interactions' joins, per-user timelines and the split by time, and the catalogue.

Interactions meet their item in a side input (a catalogue every worker can hold) or a
CoGroupByKey on the item, and their user in a CoGroupByKey on the user, where the user's
timeline is sorted (timestamp, then file line), split by time (``splits.held_out``, the
in-memory reader's rule) and turned into examples with the history before each interaction.
"""

from __future__ import annotations

import dataclasses
from typing import Dict, List

import apache_beam as beam
import numpy as np

from models import features, wire
from models.data import errors, examples, layouts, splits
from models.data.beam import files, rows
from models.data.beam.report import Problems, TimeRange, collect
from models.data.config import DataConfig
from models.data.errors import BadRow
from models.data.layouts import Table


def _unknown_id(interactions_path: str, number: int, kind: str, value: str, side_path: str):
    """The BadRow (on the 'bad' output) of an interaction naming a user or item absent from the
    side table; the message is the in-memory reader's."""
    field = features.USER_ID if kind == "user" else features.ITEM_ID
    return beam.pvalue.TaggedOutput(rows.BAD, BadRow(interactions_path, number, field,
                                                     errors.unknown_id(kind, value, side_path)))


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
    of up to MAX_HISTORY earlier items; the split per ``strategy`` by ``splits.held_out``."""

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


def interactions(pipeline, folder: str, eval_fraction: float, strategy: str, domains,
                 range_bytes: int = DataConfig.range_bytes,
                 side_input_bytes: int = DataConfig.side_input_bytes) -> Interactions:
    """Adds the interactions ExampleGen's steps to ``pipeline``: train and eval examples.

    Args:
      side_input_bytes: an items file up to this size is joined as a side input every worker
        holds; a larger one by a CoGroupByKey on the item.
    """
    found = layouts.tables_of(folder)
    users_t, items_t, inter_t = found[layouts.USERS], found[layouts.ITEMS], found[layouts.INTERACTIONS]
    problems = Problems([], [], [], paths=[t.path for t in (users_t, items_t, inter_t) if t.present])
    inter = rows.read_table(pipeline, inter_t, domains, "Interactions", range_bytes)
    collect(problems, inter)
    item_table = None
    if items_t.present:
        items = _items(pipeline, found, domains, problems)
        if files.file_size(items_t.path) <= side_input_bytes:
            # A catalogue every worker can hold: its serialized features as a side input, so
            # the interactions meet their item where they are parsed, without a shuffle.
            encoded = items | "EncodeItems" >> beam.MapTuple(lambda i, f: (i, examples.item_fields(i, f)))
            item_table = beam.pvalue.AsDict(encoded)
            known = inter.rows | "KnownItems" >> beam.ParDo(
                _LookupItem(inter_t.path, items_t.path), item_table).with_outputs(rows.BAD, main="events")
        else:
            # A larger catalogue: interactions and items meet in a CoGroupByKey on the item.
            by_item = inter.rows | "ByItem" >> beam.Map(lambda p: (p[1][features.ITEM_ID], p))
            known = ({"inter": by_item, "item": items}
                     | "JoinItems" >> beam.CoGroupByKey()
                     | "KnownItems" >> beam.ParDo(_JoinItem(inter_t.path, items_t.path)).with_outputs(
                         rows.BAD, main="events"))
        problems.bad.append(known[rows.BAD])
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
            | "TimeCut" >> beam.CombineGlobally(_TimeCut(eval_fraction)))
    timelines = ({"inter": events, "user": users}
                 | "JoinUsers" >> beam.CoGroupByKey()
                 | "Timelines" >> beam.ParDo(
                     _Timeline(inter_t.path, users_t.path, users_t.present, eval_fraction, strategy),
                     cut=cut, items=item_table).with_outputs(rows.BAD, features.TRAIN, features.EVAL))
    problems.bad.append(timelines[rows.BAD])
    problems.times = (events
                      | "EventTimes" >> beam.Map(lambda e: e[1][0])
                      | "TimeRange" >> beam.CombineGlobally(TimeRange()))
    return Interactions({features.TRAIN: timelines[features.TRAIN],
                         features.EVAL: timelines[features.EVAL]}, problems)


def catalogue(pipeline, folder: str, domains, range_bytes: int = DataConfig.range_bytes):
    """Adds the catalogue ExampleGen's steps: (serialized item examples, Problems). Only the
    items file is read; without one (canonical layout) the items of the interactions."""
    found = layouts.tables_of(folder)
    items_t = found[layouts.ITEMS]
    problems = Problems([], [], [], paths=[items_t.path] if items_t.present else
                        [found[layouts.INTERACTIONS].path])
    if items_t.present:
        items = _items(pipeline, found, domains, problems)
    else:
        inter = rows.read_table(pipeline, found[layouts.INTERACTIONS], domains, "Interactions", range_bytes)
        collect(problems, inter)
        items = (inter.rows
                 | "ItemIds" >> beam.Map(lambda p: p[1][features.ITEM_ID])
                 | "Distinct" >> beam.Distinct()
                 | "Unknown" >> beam.Map(lambda i: (i, dict(layouts.UNKNOWN_ITEM))))
    return items | "ToExamples" >> beam.MapTuple(examples.catalogue_example), problems


def _items(pipeline, found: Dict[str, Table], domains, problems: Problems):
    """(item_id, features) of the items file, each item's tags (``layouts.item_tags``) joined
    in where the layout has a tags file: the in-memory reader's items."""
    items = _side(pipeline, found[layouts.ITEMS], domains, "Items", problems)
    tags_t = found.get(layouts.TAGS)
    if tags_t is None or not tags_t.present:
        return items
    read = rows.read_table(pipeline, tags_t, domains, "Tags")
    collect(problems, read)
    problems.paths.append(tags_t.path)
    tags = (read.rows
            | "TagsByItem" >> beam.Map(lambda p: (p[1][features.ITEM_ID], p[1][layouts.TAG]))
            | "GroupTags" >> beam.GroupByKey())
    return ({"item": items, "tags": tags}
            | "JoinTags" >> beam.CoGroupByKey()
            | "WithTags" >> beam.FlatMap(_with_tags))


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
