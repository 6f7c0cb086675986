"""Writing a dataset in the canonical layout (UTF-8 CSV), e.g. a part of another one."""

from __future__ import annotations

import csv
import os
from typing import Dict, Iterable

from components import features as F


def write_canonical(folder: str, interactions: Iterable[tuple], users: Dict[str, dict],
                    items: Dict[str, dict]) -> str:
    """Writes interactions.csv, users.csv and items.csv into ``folder``; returns it.

    Args:
      interactions: (user_id, item_id, timestamp, rating) rows.
      users: user_id -> {age, gender, occupation}.
      items: item_id -> {title, genres, year}; every item is written, interacted
        with or not (the catalogue).
    """
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "interactions.csv"), "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow((F.USER_ID, F.ITEM_ID, F.TIMESTAMP, F.RATING))
        writer.writerows(interactions)
    with open(os.path.join(folder, "users.csv"), "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow((F.USER_ID, F.AGE, F.GENDER, F.OCCUPATION))
        for user, values in sorted(users.items()):
            writer.writerow((user, values[F.AGE], values[F.GENDER], values[F.OCCUPATION]))
    with open(os.path.join(folder, "items.csv"), "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow((F.ITEM_ID, F.TITLE, F.GENRES, F.YEAR))
        for item, values in sorted(items.items()):
            writer.writerow((item, values[F.TITLE], "|".join(values[F.GENRES]), values[F.YEAR]))
    return folder
