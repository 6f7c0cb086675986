"""Readers for the three input layouts, all returning one canonical Dataset.

Layouts:
  canonical: ``interactions.csv`` (user_id, item_id, timestamp[, rating]),
    optional ``users.csv`` (user_id[, age, gender, occupation]) and
    ``items.csv`` (item_id[, title, genres, year]; genres '|'-separated).
  ml-100k: ``u.data``, ``u.user``, ``u.item``, ``u.genre`` (GroupLens).
  ml-1m: ``ratings.dat``, ``users.dat``, ``movies.dat`` ('::', latin-1).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
from typing import Dict, List, Optional, Tuple

import tensorflow as tf

from models import features
from models.data import schema, tables
from models.data.errors import DataError, ValidationReport

CANONICAL, ML_100K, ML_1M = "canonical", "ml-100k", "ml-1m"
_MARKERS = {
    CANONICAL: ("interactions.csv",),
    ML_100K: ("u.data", "u.user", "u.item"),
    ML_1M: ("ratings.dat", "users.dat", "movies.dat"),
}
_YEAR_IN_TITLE = re.compile(r"\((\d{4})\)\s*$")


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


def detect_layout(folder: str) -> str:
    """Names the layout of ``folder``.

    Raises:
      DataError: the folder is missing or holds no known layout.
    """
    if not tf.io.gfile.isdir(folder):
        raise DataError(f"{folder}: not a folder. Pass --data a folder with interactions.csv "
                        f"or a MovieLens 100K/1M download.")
    names = set(tf.io.gfile.listdir(folder))
    for layout, markers in _MARKERS.items():
        if all(m in names for m in markers):
            return layout
    raise DataError(
        f"{folder}: no known layout. Expected interactions.csv (+ users.csv, items.csv), "
        f"MovieLens 100K (u.data, u.user, u.item) or MovieLens 1M (ratings.dat, users.dat, "
        f"movies.dat); found {sorted(names)[:10]}."
    )


def read_dataset(folder: str, max_bad_fraction: float = 0.0) -> Dataset:
    """Reads and validates the dataset in ``folder``, whatever its layout.

    Raises:
      DataError: with file, line and field of what is wrong.
    """
    layout = detect_layout(folder)
    reader = {CANONICAL: _read_canonical, ML_100K: _read_ml100k, ML_1M: _read_ml1m}[layout]
    report = ValidationReport()
    interactions, users, items = reader(folder, report, max_bad_fraction, schema.domains())
    report.warnings.extend(_time_warnings(interactions))
    if report.skipped or report.warnings:
        logging.warning("%s", report.summary())
    return Dataset(interactions, users, items, layout, report)


def _user_table(columns: Dict[str, list]) -> Dict[str, dict]:
    return {
        uid: {features.AGE: age, features.GENDER: gender, features.OCCUPATION: occ}
        for uid, age, gender, occ in zip(columns[features.USER_ID], columns[features.AGE],
                                         columns[features.GENDER], columns[features.OCCUPATION])
    }


def _item_table(columns: Dict[str, list]) -> Dict[str, dict]:
    return {
        iid: {features.TITLE: title, features.GENRES: genres, features.YEAR: year}
        for iid, title, genres, year in zip(columns[features.ITEM_ID], columns[features.TITLE],
                                            columns[features.GENRES], columns[features.YEAR])
    }


def _time_warnings(interactions: Dict[str, list]) -> List[str]:
    """What makes the temporal split less temporal than it looks."""
    times = interactions[features.TIMESTAMP]
    if len(times) > 1 and min(times) == max(times):
        return [f"all {len(times)} interactions have the same timestamp ({times[0]}): the "
                f"'temporal' split and the histories follow file order. Give real times for a "
                f"split that holds out each user's latest interactions."]
    return []


def _read_canonical(folder: str, report: ValidationReport, max_bad: float, domains):
    users_path = os.path.join(folder, "users.csv")
    users = None
    if tf.io.gfile.exists(users_path):
        cols = tables.read_table(
            users_path,
            [(features.USER_ID, tables.parse_id), (features.AGE, tables.parse_optional_int),
             (features.GENDER, tables.parse_text), (features.OCCUPATION, tables.parse_text)],
            report, max_bad, optional=features.USER_FEATURES,
            defaults={features.AGE: features.UNKNOWN_NUMBER, features.GENDER: features.UNKNOWN,
                      features.OCCUPATION: features.UNKNOWN},
            unique=features.USER_ID, domains=domains,
        )
        users = _user_table(cols)
    items_path = os.path.join(folder, "items.csv")
    items = None
    if tf.io.gfile.exists(items_path):
        cols = tables.read_table(
            items_path,
            [(features.ITEM_ID, tables.parse_id), (features.TITLE, tables.parse_text),
             (features.GENRES, tables.parse_genres), (features.YEAR, tables.parse_optional_int)],
            report, max_bad, optional=features.ITEM_FEATURES,
            defaults={features.TITLE: features.UNKNOWN, features.GENRES: (),
                      features.YEAR: features.UNKNOWN_NUMBER},
            unique=features.ITEM_ID, domains=domains,
        )
        items = _item_table(cols)
    inter = tables.read_table(
        os.path.join(folder, "interactions.csv"),
        [(features.USER_ID, tables.parse_id), (features.ITEM_ID, tables.parse_id),
         (features.TIMESTAMP, tables.parse_int), (features.RATING, tables.parse_rating)],
        report, max_bad, optional=[features.RATING], defaults={features.RATING: 0.0},
        row_check=_known_ids(users, users_path, items, items_path), domains=domains,
    )
    return inter, _fill_users(users, inter), _fill_items(items, inter)


def _read_ml100k(folder: str, report: ValidationReport, max_bad: float, domains):
    users_path = os.path.join(folder, "u.user")
    cols = tables.read_table(
        users_path,
        [(features.USER_ID, tables.parse_id), (features.AGE, tables.parse_optional_int),
         (features.GENDER, tables.parse_text), (features.OCCUPATION, tables.parse_text), ("zip",
                                                                                          tables.parse_text)],
        report, max_bad, delimiter="|", header=False, encoding="latin-1", unique=features.USER_ID,
        domains=domains,
    )
    users = _user_table(cols)
    genre_names = _ml100k_genres(folder)
    items_path = os.path.join(folder, "u.item")
    flags = [(f"g{i}", tables.parse_optional_int) for i in range(len(genre_names))]
    cols = tables.read_table(
        items_path,
        [(features.ITEM_ID, tables.parse_id), (features.TITLE, tables.parse_text), ("release",
                                                                                    tables.parse_text),
         ("video", tables.parse_text), ("url", tables.parse_text)] + flags,
        report, max_bad, delimiter="|", header=False, encoding="latin-1", unique=features.ITEM_ID,
    )
    items = {}
    for row in range(len(cols[features.ITEM_ID])):
        title = cols[features.TITLE][row]
        genres = tuple(g for i, g in enumerate(genre_names) if cols[f"g{i}"][row] == 1)
        year = _year(title, cols["release"][row][-4:])
        items[cols[features.ITEM_ID][row]] = {features.TITLE: title, features.GENRES: genres,
                                              features.YEAR: year}
    inter = tables.read_table(
        os.path.join(folder, "u.data"),
        [(features.USER_ID, tables.parse_id), (features.ITEM_ID, tables.parse_id),
         (features.RATING, tables.parse_rating), (features.TIMESTAMP, tables.parse_int)],
        report, max_bad, delimiter="\t", header=False, encoding="latin-1",
        row_check=_known_ids(users, users_path, items, items_path), domains=domains,
    )
    return inter, users, items


def _ml100k_genres(folder: str) -> List[str]:
    path = os.path.join(folder, "u.genre")
    if not tf.io.gfile.exists(path):
        # The 19 genres of every ML-100K release, in flag order.
        return ["unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime",
                "Documentary", "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery",
                "Romance", "Sci-Fi", "Thriller", "War", "Western"]
    report = ValidationReport()
    cols = tables.read_table(path, [("name", tables.parse_id), ("index", tables.parse_int)],
                             report, 0.0, delimiter="|", header=False, encoding="latin-1")
    return [name for _, name in sorted(zip(cols["index"], cols["name"]))]


def _read_ml1m(folder: str, report: ValidationReport, max_bad: float, domains):
    users_path = os.path.join(folder, "users.dat")
    cols = tables.read_table(
        users_path,
        [(features.USER_ID, tables.parse_id), (features.GENDER, tables.parse_text),
         (features.AGE, tables.parse_optional_int), (features.OCCUPATION, tables.parse_text), ("zip",
                                                                                               tables.parse_text)],
        report, max_bad, delimiter="::", header=False, encoding="latin-1", unique=features.USER_ID,
        domains=domains,
    )
    users = _user_table(cols)
    items_path = os.path.join(folder, "movies.dat")
    cols = tables.read_table(
        items_path,
        [(features.ITEM_ID, tables.parse_id), (features.TITLE, tables.parse_text), (features.GENRES,
                                                                                    tables.parse_genres)],
        report, max_bad, delimiter="::", header=False, encoding="latin-1", unique=features.ITEM_ID,
    )
    cols[features.YEAR] = [_year(t, "") for t in cols[features.TITLE]]
    items = _item_table(cols)
    inter = tables.read_table(
        os.path.join(folder, "ratings.dat"),
        [(features.USER_ID, tables.parse_id), (features.ITEM_ID, tables.parse_id),
         (features.RATING, tables.parse_rating), (features.TIMESTAMP, tables.parse_int)],
        report, max_bad, delimiter="::", header=False, encoding="latin-1",
        row_check=_known_ids(users, users_path, items, items_path), domains=domains,
    )
    return inter, users, items


def _year(title: str, fallback: str) -> int:
    match = _YEAR_IN_TITLE.search(title)
    if match:
        return int(match.group(1))
    return int(fallback) if fallback.isdigit() else features.UNKNOWN_NUMBER


def _known_ids(users, users_path: str, items, items_path: str):
    """A row check that rejects interactions naming ids absent from the side tables."""

    def check(row: dict) -> Optional[Tuple[str, str]]:
        if users is not None and row[features.USER_ID] not in users:
            return features.USER_ID, f"user '{row[features.USER_ID]}' is not in {users_path}"
        if items is not None and row[features.ITEM_ID] not in items:
            return features.ITEM_ID, f"item '{row[features.ITEM_ID]}' is not in {items_path}"
        return None

    return check


def _fill_users(users, inter) -> Dict[str, dict]:
    """Without users.csv, the users of the interactions, with unknown features."""
    if users is not None:
        return users
    return {u: {features.AGE: features.UNKNOWN_NUMBER, features.GENDER: features.UNKNOWN,
                features.OCCUPATION: features.UNKNOWN}
            for u in inter[features.USER_ID]}


def _fill_items(items, inter) -> Dict[str, dict]:
    """Without items.csv, the items of the interactions, with unknown features."""
    if items is not None:
        return items
    return {i: {features.TITLE: features.UNKNOWN, features.GENRES: (), features.YEAR: features.UNKNOWN_NUMBER}
            for i in inter[features.ITEM_ID]}
