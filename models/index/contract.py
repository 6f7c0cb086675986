"""The index servable's contract: what its retrieve functions return, and the saved state its
readers use.

The IndexBuilder saves a ``servable.RetrievalIndex``; the ranking trainer, the
recommender servable (``recommender/``), the re-ranking rules and the
benchmarks load it and read its functions' outputs and its saved variables.
Those names are defined here once: the servable builds its outputs with
``Retrieved``, readers read them with ``Retrieved.of``, and ``load`` checks a
loaded servable against ``STATE``, so a renamed output or variable fails
where it is read, naming what is missing, not minutes later in a pipeline run.
"""

from __future__ import annotations

from typing import Mapping, NamedTuple

import tensorflow as tf

from models import features


class Retrieved(NamedTuple):
    """What ``retrieve_positions`` and ``retrieve_positions_with_context`` return, per request.

    Attributes:
      positions: int32 [batch, c], catalogue rows of the top ``c`` candidates, best first.
      scores: float32 [batch, c], their retrieval scores (-inf: no candidate).
      personal: bool [batch], False where the list is the popularity fallback.
      query: float32 [batch, dim], the query embedding.
      history: int32 [batch, MAX_HISTORY], catalogue rows of the user's latest items,
        oldest first, -1 padded.
      time: int64 [batch], the request's time (the user's last known interaction).
      unknown: int32 [batch], request item ids outside the catalogue.
    """

    positions: tf.Tensor
    scores: tf.Tensor
    personal: tf.Tensor
    query: tf.Tensor
    history: tf.Tensor
    time: tf.Tensor
    unknown: tf.Tensor

    @classmethod
    def spec(cls, dim: int) -> "Retrieved":
        """The TensorSpecs of these outputs for query embeddings of ``dim``, any batch and
        candidate count (a tf.function's input_signature)."""
        return cls(positions=tf.TensorSpec([None, None], tf.int32),
                   scores=tf.TensorSpec([None, None], tf.float32),
                   personal=tf.TensorSpec([None], tf.bool), query=tf.TensorSpec([None, dim], tf.float32),
                   history=tf.TensorSpec([None, features.MAX_HISTORY], tf.int32),
                   time=tf.TensorSpec([None], tf.int64), unknown=tf.TensorSpec([None], tf.int32))

    def outputs(self) -> dict:
        """As the servable's tf.function returns it (SavedModel functions return dicts)."""
        return self._asdict()

    @classmethod
    def of(cls, outputs: Mapping[str, tf.Tensor]) -> "Retrieved":
        """Reads a retrieve function's outputs.

        Raises:
          KeyError: an output is missing (the servable was built by other code).
        """
        missing = [name for name in cls._fields if name not in outputs]
        if missing:
            raise KeyError(f"the index servable's retrieve output lacks {missing}; it has "
                           f"{sorted(outputs)}: rebuild the index with this version")
        return cls(**{name: outputs[name] for name in cls._fields})


# Saved variables readers use. item_ids string [n_items]; item_titles string [n_items];
# item_embeddings float32 [n_items, dim]; popularity float32 [n_items] (interaction counts);
# candidate_count int32 scalar (the length of retrieve's lists); user_ids string [n_users];
# user_ages int64, user_genders, user_occupations string, user_last_seen int64 [n_users + 1];
# user_histories string [n_users + 1, MAX_HISTORY]; seen_row_splits int64 [n_users + 2] and
# seen_items int32: each user's interacted catalogue rows (ragged); the last row of every
# per-user table is the unknown user's.
VARIABLES = ("item_ids", "item_titles", "item_embeddings", "popularity", "candidate_count",
             "user_ids", "user_ages", "user_genders", "user_occupations", "user_last_seen",
             "user_histories", "seen_row_splits", "seen_items")
# Functions: retrieve_positions(user_id [b]) and retrieve_positions_with_context(context) ->
# Retrieved outputs; lookup_users(user_id [b]) -> int64 rows (unknown: n_users);
# lookup_items(item_ids [n]) -> int64 positions (unknown: -1); lookup_titles(item_ids [n]) ->
# {'titles'}; embed_users(user_id [b]) -> float32 [b, dim]; encoder: the retrieval model's
# query and candidate towers.
FUNCTIONS = ("retrieve_positions", "retrieve_positions_with_context", "lookup_users",
             "lookup_items", "lookup_titles", "embed_users", "encoder")
STATE = VARIABLES + FUNCTIONS


def check(index, where: str = "the index servable") -> None:
    """Raises ValueError naming what ``index`` lacks of ``STATE``."""
    missing = [name for name in STATE if not hasattr(index, name)]
    if missing:
        raise ValueError(f"{where} lacks {missing} of the index contract "
                         f"(models/index/contract.py); rebuild it with this version")


def load(export_dir: str):
    """Loads an index servable saved by the IndexBuilder and checks it against the contract."""
    index = tf.saved_model.load(export_dir)
    check(index, export_dir)
    return index


def candidates_of(index) -> int:
    """List length of ``retrieve_positions``, of a servable built here or loaded."""
    return int(index.candidate_count.numpy())


def users_of(index) -> int:
    """Users the servable knows (the row of unknown users is this number)."""
    return int(index.user_ids.shape[0])
