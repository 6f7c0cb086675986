"""Writing a dataset in the canonical layout (UTF-8 CSV), e.g. a part of another one."""

from __future__ import annotations

import csv
import os
from typing import Dict, Iterable

from models import features
from models.data import layouts


def write_canonical(folder: str, interactions: Iterable[tuple], users: Dict[str, dict],
                    items: Dict[str, dict]) -> str:
    """Writes interactions.csv, users.csv and items.csv into ``folder``; returns it.

    Args:
      interactions: (user_id, item_id, timestamp, rating) rows.
      users: user_id -> {age, gender, occupation}. When no user has a known feature
        (data read from a folder without a user file), no users.csv is written: the
        part read again is a folder without one, as the original was.
      items: item_id -> {title, genres, year[, tags]}; every item is written, interacted
        with or not (the catalogue).
    """
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "interactions.csv"), "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow((features.USER_ID, features.ITEM_ID, features.TIMESTAMP, features.RATING))
        writer.writerows(interactions)
    users_file = os.path.join(folder, "users.csv")
    if all(values == layouts.UNKNOWN_USER for values in users.values()):
        if os.path.exists(users_file):
            os.remove(users_file)
    else:
        with open(users_file, "w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow((features.USER_ID, features.AGE, features.GENDER, features.OCCUPATION))
            for user, values in sorted(users.items()):
                writer.writerow((user, values[features.AGE], values[features.GENDER],
                                 values[features.OCCUPATION]))
    with open(os.path.join(folder, "items.csv"), "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow((features.ITEM_ID, features.TITLE, features.GENRES, features.YEAR,
                         features.TAGS))
        for item, values in sorted(items.items()):
            writer.writerow((item, values[features.TITLE], "|".join(values[features.GENRES]),
                             values[features.YEAR], "|".join(values.get(features.TAGS, ()))))
    return folder
