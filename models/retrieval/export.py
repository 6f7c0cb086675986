"""The retrieval model's SavedModel: embedding signatures over raw features.

Signatures:
  query_embedding(user_id, age, gender, occupation, timestamp: [batch],
                  history: [batch, n] item ids oldest first, padded with "")
    -> embedding [batch, dim]
  candidate_embedding(item_id, title, year: [batch], genres, tags: [batch, n] padded with "")
    -> embedding [batch, dim]
Both embed the Transform graph, so callers pass raw values as they appear in the data.
"""

from __future__ import annotations

import tensorflow as tf

from models.transform import raw

QUERY_SIGNATURE = "query_embedding"
CANDIDATE_SIGNATURE = "candidate_embedding"


class _Untracked:
    """Keras objects the signatures call, held where tf.Module does not track them."""

    __slots__ = ("query", "candidate", "transform")

    def __init__(self, query, candidate, transform):
        self.query, self.candidate, self.transform = query, candidate, transform


class RetrievalModule(tf.Module):
    """Towers plus the Transform layer, callable on raw features.

    The SavedModel holds the towers' variables, the Transform graph's tables and assets and
    the two signatures, not the Keras objects: saving a Keras model or layer traces and writes
    every layer's call functions, which no caller of this SavedModel uses and every loader
    restores (about 5 s at each save, and again at each load and re-save of the servables that
    embed this one).
    """

    def __init__(self, model, tft_layer):
        super().__init__()
        self._keras = _Untracked(model.query_tower, model.candidate_tower, tft_layer)
        # What TFT's layer itself tracks for a SavedModel: its loaded Transform graph (tables,
        # vocabulary assets, their initialisers).
        self.transform_graph = tft_layer._saved_model_loader_tracked_dict  # noqa: SLF001

    # AutoGraph off: nothing here branches on a tensor (models/retrieval/model.py says why).
    @tf.function(input_signature=[raw.USER_SIGNATURE], autograph=False)
    def query_embedding(self, features):
        transformed = self._keras.transform(raw.complete(features))
        return {"embedding": self._keras.query(transformed)}

    @tf.function(input_signature=[raw.ITEM_SIGNATURE], autograph=False)
    def candidate_embedding(self, features):
        transformed = self._keras.transform(raw.complete(features))
        return {"embedding": self._keras.candidate(transformed)}


def save(model, tft_output, export_dir: str) -> None:
    module = RetrievalModule(model, tft_output.transform_features_layer())
    signatures = {QUERY_SIGNATURE: module.query_embedding,
                  CANDIDATE_SIGNATURE: module.candidate_embedding}
    if not (model.query_tower.variables and model.candidate_tower.variables):
        # The towers of a model that never trained (--epochs 0) create their variables when
        # first called: here, before saving. A trained model's functions are traced by the save
        # alone (TensorFlow keys a trace by whether it is made while saving, so one made
        # before is made again: about 1 s a signature).
        signatures = {name: f.get_concrete_function() for name, f in signatures.items()}
    # Collected after tracing, for the same reason.
    unique = {}
    for variable in model.query_tower.variables + model.candidate_tower.variables:
        unique.setdefault(id(variable), variable)  # the item-id table is in both towers
    module.tower_variables = list(unique.values())
    tf.saved_model.save(module, export_dir, signatures=signatures)
