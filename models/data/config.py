"""The data section: where interactions come from, how bad rows and the split are handled."""

from __future__ import annotations

import dataclasses
from typing import Optional

from models.config import check
from models.data import spans as span_rules


@dataclasses.dataclass(frozen=True)
class DataConfig:
    """Where the data comes from and how it is split.

    Attributes:
      data_dir: a folder in one of the supported layouts (canonical, MovieLens
        100K, MovieLens 1M); None means the embedded synthetic dataset.
      eval_fraction: share of each user's interactions, the latest in time,
        held out for evaluation (``split_strategy='per_user'``), or share of all
        interactions after a global time cut (``'global'``).
      split_strategy: 'per_user' or 'global'.
      max_bad_row_fraction: rows that fail validation are skipped and reported
        while their share of a file stays at or below this; above it the run
        stops. 0 means any bad row stops the run.
      range_bytes: the ExampleGens read interaction files in byte ranges of this size, one
        per worker task (rows keep their line numbers).
      side_input_bytes: an items file up to this size is joined to the interactions as a side
        input every Beam worker holds; a larger one by a CoGroupByKey on the item.
      spans: the window of a folder of dated spans (``models/data/spans.py``): the latest this
        many (0: every span). A folder without span subfolders is read whole.
      span_pattern: the span subfolders' names in TFX's span syntax: ``{SPAN}`` (``{SPAN:8}``
        zero-padded) or ``{YYYY}{MM}{DD}``, with ``*`` for any text.
      drift_gate: a drift beyond the schema's drift comparators from the data the served model
        learned from, or a serving skew beyond its skew comparators, stops the run before
        training (components/validation); False (``--accept-drift``): measured and reported only.
      request_log: a file (or folder of files) of served requests, one TF Serving REST request
        body per line (recommender/request_log.py; ``recsys recommend --request-log`` writes
        one): the features they carry are compared with the training data's (serving skew).
        None: no log, no skew check.
      synthetic_users, synthetic_items, synthetic_interactions, synthetic_seed:
        shape of the embedded dataset when ``data_dir`` is None.
    """

    data_dir: Optional[str] = None
    eval_fraction: float = 0.2
    split_strategy: str = "per_user"
    max_bad_row_fraction: float = 0.0
    range_bytes: int = 32 << 20
    side_input_bytes: int = 64 << 20
    spans: int = 0
    span_pattern: str = "span-{SPAN}"
    drift_gate: bool = True
    request_log: Optional[str] = None
    synthetic_users: int = 943
    synthetic_items: int = 1682
    synthetic_interactions: int = 100_000
    synthetic_seed: int = 7

    def validate(self) -> None:
        """Raises ConfigError naming the field when a value is out of range."""
        check([
            (0.0 < self.eval_fraction < 1.0, "data.eval_fraction must be in (0, 1)"),
            (self.split_strategy in ("per_user", "global"),
             "data.split_strategy must be 'per_user' or 'global'"),
            (0.0 <= self.max_bad_row_fraction < 1.0, "data.max_bad_row_fraction must be in [0, 1)"),
            (self.range_bytes >= 1024, "data.range_bytes must be at least 1024"),
            (self.side_input_bytes >= 0, "data.side_input_bytes must be >= 0"),
            (self.spans >= 0, "data.spans (--spans) must be 'all' (0) or a number of spans >= 1"),
            (span_rules.check_pattern(self.span_pattern) is None,
             str(span_rules.check_pattern(self.span_pattern))),
        ])
