"""Fetching MovieLens from GroupLens for users who are online (``recsys download``)."""

from __future__ import annotations

import io
import os
import shutil
import urllib.request
import zipfile

BASE_URL = "https://files.grouplens.org/datasets/movielens"
# The classic releases and what GroupLens ships today (ml-latest-small for development; the
# ml-latest layout of models/data/layouts.py), each a <name>.zip holding a <name>/ folder.
DATASETS = ("ml-100k", "ml-1m", "ml-latest-small", "ml-20m", "ml-25m", "ml-32m")


def download(name: str, dest: str, base_url: str = BASE_URL, timeout: float = 60.0) -> str:
    """Downloads and unpacks ``<base_url>/<name>.zip`` into ``dest/<name>``.

    Returns:
      The folder holding the dataset's files, ready for ``recsys run --data``.

    Raises:
      ValueError: unknown dataset name, or the archive lacks the folder.
    """
    if name not in DATASETS:
        raise ValueError(f"unknown dataset '{name}'; choose one of {DATASETS}")
    with urllib.request.urlopen(f"{base_url.rstrip('/')}/{name}.zip", timeout=timeout) as response:
        payload = response.read()
    target = os.path.join(dest, name)
    with zipfile.ZipFile(io.BytesIO(payload)) as archive:
        members = [m for m in archive.namelist() if m.startswith(f"{name}/") and not m.endswith("/")]
        if not members:
            raise ValueError(f"{name}.zip has no '{name}/' folder; is it a GroupLens archive?")
        os.makedirs(target, exist_ok=True)
        for member in members:
            path = os.path.join(dest, member)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with archive.open(member) as src, open(path, "wb") as out:
                shutil.copyfileobj(src, out)
    return target
