"""The in-memory reader: a whole dataset, validated, as one canonical Dataset.

For tools and tests that hold a dataset in one process (the quality benchmark's
outer split, notebooks). The ExampleGens read with Beam instead
(``models.data.beam``); both parse every row with the same declarations
(``models.data.layouts``) and the same ``tables.RowParser``.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Dict, Optional, Tuple

from models import features
from models.data import errors, layouts, schema, tables
from models.data.errors import ValidationReport
from models.data.layouts import CANONICAL, ML_1M, ML_100K, ML_LATEST  # noqa: F401 (the layout names)


@dataclasses.dataclass
class Dataset:
    """Validated data in canonical columns.

    Attributes:
      interactions: user_id, item_id, timestamp, rating columns (equal length).
      users: user_id -> {age, gender, occupation}.
      items: item_id -> {title, genres, year}; the item catalogue.
      layout: which layout was read.
      report: rows read and rows skipped, per file.
    """

    interactions: Dict[str, list]
    users: Dict[str, dict]
    items: Dict[str, dict]
    layout: str
    report: ValidationReport

    def __len__(self) -> int:
        return len(self.interactions[features.USER_ID])


detect_layout = layouts.detect


def read_dataset(folder: str, max_bad_fraction: float = 0.0) -> Dataset:
    """Reads and validates the dataset in ``folder``, whatever its layout.

    Raises:
      DataError: with file, line and field of what is wrong.
    """
    layout = layouts.detect(folder)
    found = layouts.tables_of(folder, layout)
    report = ValidationReport()
    domains = schema.domains()
    users = _side_table(found[layouts.USERS], report, max_bad_fraction, domains)
    items = _side_table(found[layouts.ITEMS], report, max_bad_fraction, domains)
    if items is not None and layouts.TAGS in found and found[layouts.TAGS].present:
        _add_tags(items, found[layouts.TAGS], report, max_bad_fraction, domains)
    table = found[layouts.INTERACTIONS]
    inter = tables.read_table(table.path, table.spec, report, max_bad_fraction, domains=domains,
                              row_check=_known_ids(users, found[layouts.USERS].path, items,
                                                   found[layouts.ITEMS].path))
    inter = {name: inter[name] for name in layouts.INTERACTION_FIELDS}
    if users is None:
        users = {u: dict(layouts.UNKNOWN_USER) for u in inter[features.USER_ID]}
    if items is None:
        items = {i: dict(layouts.UNKNOWN_ITEM) for i in inter[features.ITEM_ID]}
    report.warnings.extend(errors.time_warnings(min(inter[features.TIMESTAMP], default=0),
                                         max(inter[features.TIMESTAMP], default=0),
                                         len(inter[features.TIMESTAMP])))
    if report.skipped or report.warnings:
        logging.warning("%s", report.summary())
    return Dataset(inter, users, items, layout, report)


def _side_table(table: layouts.Table, report, max_bad: float, domains) -> Optional[Dict[str, dict]]:
    """id -> canonical features of a users or items table (None when the file is absent)."""
    if not table.present:
        return None
    cols = tables.read_table(table.path, table.spec, report, max_bad, domains=domains)
    names = list(cols)
    out = {}
    for values in zip(*(cols[n] for n in names)):
        row = table.finish(dict(zip(names, values)))
        key = row.pop(table.spec.unique)
        out[key] = row
    return out


def _add_tags(items: Dict[str, dict], table: layouts.Table, report, max_bad: float,
              domains) -> None:
    """Each item's tags (``layouts.item_tags``) into its features; tags of items the catalogue
    lacks describe nothing and are left out."""
    cols = tables.read_table(table.path, table.spec, report, max_bad, domains=domains)
    given: Dict[str, list] = {}
    for item, tag in zip(cols[features.ITEM_ID], cols[layouts.TAG]):
        given.setdefault(item, []).append(tag)
    for item, tags in given.items():
        if item in items:
            items[item][features.TAGS] = layouts.item_tags(tags)


def _known_ids(users, users_path: str, items, items_path: str):
    """A row check that rejects interactions naming ids absent from the side tables."""

    def check(row: dict) -> Optional[Tuple[str, str]]:
        if users is not None and row[features.USER_ID] not in users:
            return features.USER_ID, errors.unknown_id("user", row[features.USER_ID], users_path)
        if items is not None and row[features.ITEM_ID] not in items:
            return features.ITEM_ID, errors.unknown_id("item", row[features.ITEM_ID], items_path)
        return None

    return check
