"""A deterministic synthetic dataset of MovieLens-100K shape, written in the canonical layout.

What is planted, so that a model that learns wins and one that does not loses:
  * latent tastes: every user and item has a vector in a low-dimensional taste
    space; an item's vector is the mean of its genres' vectors plus noise, so
    genres (and title words, drawn per genre) carry content signal;
  * demographics: age group, gender and occupation each shift the user's taste,
    so side features help with users that have little history;
  * popularity skew: a log-normal item bias makes a few items very popular, as
    in MovieLens, so popularity is a strong baseline;
  * time drift: tastes move over the user's active period and new items are
    released during the log window and are popular right after release, so
    the latest interactions (the evaluation split) differ from the first ones.

Interactions are drawn per user in chronological chunks by sampling without
replacement from softmax(taste . item + bias) over the items released so far.
"""

from __future__ import annotations

import csv
import os
from typing import Dict

import numpy as np

GENRES = ("Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary",
          "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi",
          "Thriller", "War", "Western")
OCCUPATIONS = ("administrator", "artist", "doctor", "educator", "engineer", "entertainment",
               "executive", "healthcare", "homemaker", "lawyer", "librarian", "marketing", "none",
               "other", "programmer", "retired", "salesman", "scientist", "student", "technician",
               "writer")
AGES = (7, 18, 25, 35, 45, 50, 56)
_SYLLABLES = ("ka", "lo", "mi", "ra", "ten", "vo", "shi", "dar", "el", "nu", "qui", "bor", "fen",
              "gal", "hex", "ist", "jun", "mor", "pa", "zet")
TEXT_HAZARDS = ["Misérables,", "Über", "Niño", "千と千尋", "🎬", '"Quoted"', "(Ça)", "Ærø"]
START_TIME = 874_724_710  # 1997-09-20, the start of the MovieLens-100K log
LOG_SECONDS = 215 * 24 * 3600  # about seven months, as MovieLens-100K


def _words(rng: np.random.Generator, count: int) -> list:
    return ["".join(rng.choice(_SYLLABLES, size=rng.integers(2, 4))).capitalize()
            for _ in range(count)]


def generate(
    num_users: int = 943,
    num_items: int = 1682,
    num_interactions: int = 100_000,
    seed: int = 7,
    dim: int = 8,
    popularity_spread: float = 1.1,
) -> Dict[str, list]:
    """Generates the dataset in memory.

    ``popularity_spread`` is the standard deviation of the items' log-popularity
    bias: larger values give a longer tail of rarely chosen items.

    Returns:
      {'interactions': rows (user_id, item_id, timestamp, rating),
       'users': rows (user_id, age, gender, occupation),
       'items': rows (item_id, title, genres, year)}; ids are '1'...'n'.
    """
    rng = np.random.default_rng(seed)
    genre_vec = rng.normal(size=(len(GENRES), dim))
    genre_weight = rng.dirichlet(np.full(len(GENRES), 0.7))
    genre_words = [_words(rng, 12) for _ in GENRES]
    common_words = _words(rng, 40)
    # Text as real catalogues carry it, in some titles: accents, non-Latin scripts, emoji,
    # commas, quotes and parentheses.
    common_words[:len(TEXT_HAZARDS)] = TEXT_HAZARDS

    # Items: genres, taste vector, popularity bias, release year and time.
    item_vec = np.zeros((num_items, dim))
    items = []
    new_release = rng.random(num_items) < 0.15
    release_time = np.where(new_release, START_TIME + rng.random(num_items) * LOG_SECONDS * 0.9,
                            START_TIME - 1)
    for i in range(num_items):
        n_genres = rng.choice([1, 2, 3], p=[0.5, 0.35, 0.15])
        g = rng.choice(len(GENRES), size=n_genres, replace=False, p=genre_weight)
        item_vec[i] = genre_vec[g].mean(axis=0) + 0.6 * rng.normal(size=dim)
        year = 1998 if new_release[i] else int(np.clip(1998 - rng.exponential(12), 1922, 1997))
        words = [rng.choice(genre_words[rng.choice(g)]) for _ in range(rng.integers(1, 3))]
        if rng.random() < 0.5:
            words.insert(0, rng.choice(common_words))
        title = f"{' '.join(words)} ({year})"
        items.append((str(i + 1), title, "|".join(GENRES[k] for k in sorted(g)), year))
    bias = rng.normal(0.0, popularity_spread, size=num_items)

    # Users: demographics shift the taste; activity is heavy-tailed.
    age_vec = 0.6 * rng.normal(size=(len(AGES), dim))
    gender_vec = 0.5 * rng.normal(size=(2, dim))
    occ_vec = 0.5 * rng.normal(size=(len(OCCUPATIONS), dim))
    ages = rng.integers(0, len(AGES), num_users)
    genders = rng.integers(0, 2, num_users)
    occs = rng.integers(0, len(OCCUPATIONS), num_users)
    user_vec = age_vec[ages] + gender_vec[genders] + occ_vec[occs] + 0.8 * rng.normal(size=(num_users, dim))
    drift = 0.5 * rng.normal(size=(num_users, dim))
    activity = rng.lognormal(0.0, 0.9, num_users)
    counts = np.maximum(20, np.round(activity / activity.sum() * num_interactions)).astype(int)
    counts = np.minimum(counts, num_items // 2)
    users = [(str(u + 1), int(AGES[ages[u]] + rng.integers(0, 6)), "MF"[genders[u]], OCCUPATIONS[occs[u]])
             for u in range(num_users)]

    interactions = []
    sharpness = 1.6
    for u in range(num_users):
        start = START_TIME + rng.random() * LOG_SECONDS * 0.8
        end = min(START_TIME + LOG_SECONDS, start + rng.exponential(LOG_SECONDS * 0.25) + 3600)
        times = np.sort(rng.uniform(start, end, counts[u]))
        chosen = np.zeros(num_items, dtype=bool)
        for chunk in np.array_split(np.arange(counts[u]), 4):
            if len(chunk) == 0:
                continue
            t = times[chunk].mean()
            progress = (t - start) / max(end - start, 1.0)
            taste = user_vec[u] + progress * drift[u]
            age_days = (t - release_time) / 86400.0
            freshness = np.where(new_release & (age_days >= 0), 1.5 * np.exp(-age_days / 30.0), 0.0)
            logits = sharpness * item_vec @ taste / np.sqrt(dim) + bias + freshness
            logits[(release_time > t) | chosen] = -np.inf
            gumbel = logits + rng.gumbel(size=num_items)
            picks = np.argsort(-gumbel)[: len(chunk)]
            chosen[picks] = True
            affinity = item_vec[picks] @ taste / np.sqrt(dim)
            ratings = np.clip(np.round(3.5 + 0.9 * affinity + 0.8 * rng.normal(size=len(picks))), 1, 5)
            for item, ts, r in zip(rng.permutation(picks), times[chunk], ratings):
                interactions.append((str(u + 1), str(item + 1), int(ts), int(r)))
    return {"interactions": interactions, "users": users, "items": items}


def write_canonical(folder: str, user_features: bool = True, **kwargs) -> str:
    """Generates the dataset and writes interactions.csv, items.csv and (``user_features``)
    users.csv; without it the folder is a catalogue with no user file, as GroupLens's
    current releases are.

    Writing is skipped when the folder already holds a dataset of the same
    parameters, so repeated runs reuse it.

    Returns:
      ``folder``.
    """
    stamp = os.path.join(folder, "GENERATED_WITH")
    signature = repr(sorted(kwargs.items()) + [("user_features", user_features)])
    if os.path.exists(stamp) and open(stamp).read() == signature:
        return folder
    os.makedirs(folder, exist_ok=True)
    data = generate(**kwargs)
    headers = {
        "interactions": ("user_id", "item_id", "timestamp", "rating"),
        "users": ("user_id", "age", "gender", "occupation"),
        "items": ("item_id", "title", "genres", "year"),
    }
    if not user_features:
        del headers["users"]
        if os.path.exists(os.path.join(folder, "users.csv")):
            os.remove(os.path.join(folder, "users.csv"))
    for name, header in headers.items():
        with open(os.path.join(folder, f"{name}.csv"), "w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(header)
            writer.writerows(data[name])
    with open(stamp, "w") as f:
        f.write(signature)
    return folder
