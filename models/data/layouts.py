"""The supported input layouts: which files each has and how every file is parsed.

Layouts:
  canonical: ``interactions.csv`` (user_id, item_id, timestamp[, rating]),
    optional ``users.csv`` (user_id[, age, gender, occupation]) and
    ``items.csv`` (item_id[, title, genres, year]; genres '|'-separated).
  ml-100k: ``u.data``, ``u.user``, ``u.item``, ``u.genre`` (GroupLens).
  ml-1m: ``ratings.dat``, ``users.dat``, ``movies.dat`` ('::', latin-1).
  ml-latest: ``ratings.csv`` (userId, movieId, rating, timestamp) and ``movies.csv``
    (movieId, title, genres; the year in the title, '(no genres listed)' for none), UTF-8 CSV,
    no user file: what GroupLens ships today (ml-latest-small, ml-20m, ml-25m, ml-32m).
    Users then have unknown demographics and are known by id and history alone.

Both readers use these declarations: the in-memory one (``models.data.readers``)
and the Beam one the ExampleGens run (``models.data.beam``). Every table
ends as canonical rows: users {user_id, age, gender, occupation}, items
{item_id, title, genres, year}, interactions {user_id, item_id, timestamp, rating}.
"""

from __future__ import annotations

import dataclasses
import os
import re
from typing import Dict, Optional, Sequence

import tensorflow as tf

from models import features
from models.data import tables
from models.data.errors import DataError, ValidationReport
from models.data.tables import TableSpec

CANONICAL, ML_100K, ML_1M, ML_LATEST = "canonical", "ml-100k", "ml-1m", "ml-latest"
USERS, ITEMS, INTERACTIONS = "users", "items", "interactions"
# ml-latest's tags.csv (optional): each item's tags become item text (``item_tags``).
TAGS = "tags"
_MARKERS = {
    CANONICAL: ("interactions.csv",),
    ML_100K: ("u.data", "u.user", "u.item"),
    ML_1M: ("ratings.dat", "users.dat", "movies.dat"),
    ML_LATEST: ("ratings.csv", "movies.csv"),
}
# What ml-latest's movies.csv says for a movie without genres.
NO_GENRES = "(no genres listed)"
_YEAR_IN_TITLE = re.compile(r"\((\d{4})\)\s*$")
# The 19 genres of every ML-100K release, in flag order (when u.genre is absent).
ML100K_GENRES = ("unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime",
                 "Documentary", "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery",
                 "Romance", "Sci-Fi", "Thriller", "War", "Western")


def year(title: str, fallback: str = "") -> int:
    """The year in a MovieLens title ('Heat (1995)'), else ``fallback``, else unknown."""
    match = _YEAR_IN_TITLE.search(title)
    if match:
        return int(match.group(1))
    return int(fallback) if fallback.isdigit() else features.UNKNOWN_NUMBER


class Canonical:
    """A parsed row already in canonical fields (extra columns such as zip dropped)."""

    def __init__(self, names: Sequence[str]):
        self.names = tuple(names)

    def __call__(self, row: dict) -> dict:
        return {name: row[name] for name in self.names}


class CanonicalItem(Canonical):
    """items.csv: its tags column as given, each tag once (``tag_text``; case ignored), at
    most MAX_TAGS."""

    def __init__(self):
        super().__init__(ITEM_FIELDS)

    def __call__(self, row: dict) -> dict:
        out = super().__call__(row)
        kept: Dict[str, str] = {}
        for tag in out[features.TAGS]:
            text = tag_text(tag)
            if text:
                kept.setdefault(text.lower(), text)
        out[features.TAGS] = tuple(kept.values())[:features.MAX_TAGS]
        return out


class Ml100kItem:
    """u.item's 19 genre flags and release date -> genres and year."""

    def __init__(self, genre_names: Sequence[str]):
        self.genre_names = tuple(genre_names)

    def __call__(self, row: dict) -> dict:
        title = row[features.TITLE]
        return {features.ITEM_ID: row[features.ITEM_ID], features.TITLE: title,
                features.GENRES: tuple(g for i, g in enumerate(self.genre_names) if row[f"g{i}"] == 1),
                features.YEAR: year(title, row["release"][-4:]), features.TAGS: ()}


class Ml1mItem:
    """movies.dat has no year column: it comes from the title."""

    def __call__(self, row: dict) -> dict:
        return {features.ITEM_ID: row[features.ITEM_ID], features.TITLE: row[features.TITLE],
                features.GENRES: row[features.GENRES], features.YEAR: year(row[features.TITLE]),
                features.TAGS: ()}


class MlLatestItem:
    """movies.csv: the year from the title, no '(no genres listed)' genre."""

    def __call__(self, row: dict) -> dict:
        title = row[features.TITLE]
        return {features.ITEM_ID: row[features.ITEM_ID], features.TITLE: title,
                features.GENRES: tuple(g for g in row[features.GENRES] if g != NO_GENRES),
                features.YEAR: year(title), features.TAGS: ()}


USER_FIELDS = (features.USER_ID, features.AGE, features.GENDER, features.OCCUPATION)
ITEM_FIELDS = (features.ITEM_ID, features.TITLE, features.GENRES, features.YEAR, features.TAGS)
INTERACTION_FIELDS = (features.USER_ID, features.ITEM_ID, features.TIMESTAMP, features.RATING)
UNKNOWN_USER = {features.AGE: features.UNKNOWN_NUMBER, features.GENDER: features.UNKNOWN,
                features.OCCUPATION: features.UNKNOWN}
UNKNOWN_ITEM = {features.TITLE: features.UNKNOWN, features.GENRES: (),
                features.YEAR: features.UNKNOWN_NUMBER, features.TAGS: ()}
TAG = "tag"


@dataclasses.dataclass(frozen=True)
class Table:
    """One file of a layout.

    Attributes:
      path: the file.
      spec: how it is parsed.
      finish: parsed row -> canonical row.
      present: False for an optional file the folder lacks (canonical users.csv,
        items.csv): its rows are derived from the interactions, with unknown features.
    """

    path: str
    spec: TableSpec
    finish: object
    present: bool = True


def detect(folder: str) -> str:
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
        f"MovieLens 100K (u.data, u.user, u.item), MovieLens 1M (ratings.dat, users.dat, "
        f"movies.dat) or a current GroupLens release such as ml-latest-small or ml-32m "
        f"(ratings.csv, movies.csv); found {sorted(names)[:10]}."
    )


def tables_of(folder: str, layout: Optional[str] = None) -> Dict[str, Table]:
    """The users, items and interactions tables of ``folder`` (its layout detected when None),
    and, for ml-latest, its tags table (``TAGS``; present or not)."""
    layout = layout or detect(folder)
    return {CANONICAL: _canonical, ML_100K: _ml100k, ML_1M: _ml1m, ML_LATEST: _ml_latest}[layout](folder)


def _canonical(folder: str) -> Dict[str, Table]:
    users = os.path.join(folder, "users.csv")
    items = os.path.join(folder, "items.csv")
    return {
        USERS: Table(users, TableSpec(
            ((features.USER_ID, tables.parse_id), (features.AGE, tables.parse_optional_int),
             (features.GENDER, tables.parse_text), (features.OCCUPATION, tables.parse_text)),
            optional=features.USER_FEATURES, defaults=UNKNOWN_USER, unique=features.USER_ID),
            Canonical(USER_FIELDS), tf.io.gfile.exists(users)),
        ITEMS: Table(items, TableSpec(
            ((features.ITEM_ID, tables.parse_id), (features.TITLE, tables.parse_text),
             (features.GENRES, tables.parse_genres), (features.YEAR, tables.parse_optional_int),
             (features.TAGS, tables.parse_genres)),
            optional=features.ITEM_FEATURES, defaults=UNKNOWN_ITEM, unique=features.ITEM_ID),
            CanonicalItem(), tf.io.gfile.exists(items)),
        INTERACTIONS: Table(os.path.join(folder, "interactions.csv"), TableSpec(
            ((features.USER_ID, tables.parse_id), (features.ITEM_ID, tables.parse_id),
             (features.TIMESTAMP, tables.parse_int), (features.RATING, tables.parse_rating)),
            optional=(features.RATING,), defaults={features.RATING: 0.0}),
            Canonical(INTERACTION_FIELDS)),
    }


def _ml100k(folder: str) -> Dict[str, Table]:
    genres = _ml100k_genres(folder)
    latin = dict(header=False, encoding="latin-1")
    return {
        USERS: Table(os.path.join(folder, "u.user"), TableSpec(
            ((features.USER_ID, tables.parse_id), (features.AGE, tables.parse_optional_int),
             (features.GENDER, tables.parse_text), (features.OCCUPATION, tables.parse_text),
             ("zip", tables.parse_text)), delimiter="|", unique=features.USER_ID, **latin),
            Canonical(USER_FIELDS)),
        ITEMS: Table(os.path.join(folder, "u.item"), TableSpec(
            ((features.ITEM_ID, tables.parse_id), (features.TITLE, tables.parse_text),
             ("release", tables.parse_text), ("video", tables.parse_text), ("url", tables.parse_text))
            + tuple((f"g{i}", tables.parse_optional_int) for i in range(len(genres))),
            delimiter="|", unique=features.ITEM_ID, checked=False, **latin), Ml100kItem(genres)),
        INTERACTIONS: Table(os.path.join(folder, "u.data"), TableSpec(
            ((features.USER_ID, tables.parse_id), (features.ITEM_ID, tables.parse_id),
             (features.RATING, tables.parse_rating), (features.TIMESTAMP, tables.parse_int)),
            delimiter="\t", **latin), Canonical(INTERACTION_FIELDS)),
    }


def _ml100k_genres(folder: str) -> Sequence[str]:
    path = os.path.join(folder, "u.genre")
    if not tf.io.gfile.exists(path):
        return ML100K_GENRES
    spec = TableSpec((("name", tables.parse_id), ("index", tables.parse_int)), delimiter="|",
                     header=False, encoding="latin-1", checked=False)
    cols = tables.read_table(path, spec, ValidationReport(), 0.0)
    return tuple(name for _, name in sorted(zip(cols["index"], cols["name"])))


def _ml1m(folder: str) -> Dict[str, Table]:
    latin = dict(delimiter="::", header=False, encoding="latin-1")
    return {
        USERS: Table(os.path.join(folder, "users.dat"), TableSpec(
            ((features.USER_ID, tables.parse_id), (features.GENDER, tables.parse_text),
             (features.AGE, tables.parse_optional_int), (features.OCCUPATION, tables.parse_text),
             ("zip", tables.parse_text)), unique=features.USER_ID, **latin), Canonical(USER_FIELDS)),
        ITEMS: Table(os.path.join(folder, "movies.dat"), TableSpec(
            ((features.ITEM_ID, tables.parse_id), (features.TITLE, tables.parse_text),
             (features.GENRES, tables.parse_genres)), unique=features.ITEM_ID, checked=False, **latin),
            Ml1mItem()),
        INTERACTIONS: Table(os.path.join(folder, "ratings.dat"), TableSpec(
            ((features.USER_ID, tables.parse_id), (features.ITEM_ID, tables.parse_id),
             (features.RATING, tables.parse_rating), (features.TIMESTAMP, tables.parse_int)),
            **latin), Canonical(INTERACTION_FIELDS)),
    }


def _ml_latest(folder: str) -> Dict[str, Table]:
    users = os.path.join(folder, "users.csv")  # none in GroupLens's releases: derived
    ids = {features.USER_ID: "userId", features.ITEM_ID: "movieId"}
    return {
        USERS: Table(users, TableSpec(((features.USER_ID, tables.parse_id),),
                                      unique=features.USER_ID), Canonical(USER_FIELDS), False),
        ITEMS: Table(os.path.join(folder, "movies.csv"), TableSpec(
            ((features.ITEM_ID, tables.parse_id), (features.TITLE, tables.parse_text),
             (features.GENRES, tables.parse_genres)), unique=features.ITEM_ID, checked=False,
            columns=ids), MlLatestItem()),
        INTERACTIONS: Table(os.path.join(folder, "ratings.csv"), TableSpec(
            ((features.USER_ID, tables.parse_id), (features.ITEM_ID, tables.parse_id),
             (features.RATING, tables.parse_rating), (features.TIMESTAMP, tables.parse_int)),
            columns=ids), Canonical(INTERACTION_FIELDS)),
        TAGS: Table(os.path.join(folder, "tags.csv"), TableSpec(
            ((features.USER_ID, tables.parse_id), (features.ITEM_ID, tables.parse_id),
             (TAG, tables.parse_text), (features.TIMESTAMP, tables.parse_int)),
            optional=(features.USER_ID, features.TIMESTAMP),
            defaults={features.USER_ID: "", features.TIMESTAMP: 0}, columns=ids, checked=False),
            Canonical((features.ITEM_ID, TAG)),
            tf.io.gfile.exists(os.path.join(folder, "tags.csv"))),
    }


def tag_text(tag: str) -> str:
    """A tag as item text: its words, single-spaced ("" for a blank tag)."""
    return " ".join(tag.split())


def item_tags(tags) -> tuple:
    """An item's tags as item text: each distinct tag (case and spacing ignored; its most
    common spelling, lower case on a tie) once, the most often given first (ties by the tag), at most
    ``features.MAX_TAGS``.

    Args:
      tags: the tag texts people gave the item, one per tags.csv row.
    """
    counts: Dict[str, Dict[str, int]] = {}
    for tag in tags:
        text = tag_text(tag)
        if text:
            spellings = counts.setdefault(text.lower(), {})
            spellings[text] = spellings.get(text, 0) + 1
    ranked = sorted(counts.items(), key=lambda kv: (-sum(kv[1].values()), kv[0]))
    return tuple(min(spellings, key=lambda s: (-spellings[s], s != s.lower(), s))
                 for _, spellings in ranked[:features.MAX_TAGS])
