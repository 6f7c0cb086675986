"""The retrieval model's SavedModel: embedding signatures over raw features.

Signatures:
  query_embedding(user_id, age, gender, occupation, timestamp: [batch],
                  history: [batch, n] item ids oldest first, padded with "")
    -> embedding [batch, dim]
  candidate_embedding(item_id, title, year: [batch], genres: [batch, n] padded with "")
    -> embedding [batch, dim]
Both embed the Transform graph, so callers pass raw values as they appear in the data.
"""

from __future__ import annotations

import tensorflow as tf

from models.transform import raw

QUERY_SIGNATURE = "query_embedding"
CANDIDATE_SIGNATURE = "candidate_embedding"


class RetrievalModule(tf.Module):
    """Towers plus the Transform layer, callable on raw features."""

    def __init__(self, model, tft_layer):
        super().__init__()
        self.query_tower = model.query_tower
        self.candidate_tower = model.candidate_tower
        self.tft_layer = tft_layer

    @tf.function(input_signature=[raw.USER_SIGNATURE])
    def query_embedding(self, features):
        transformed = self.tft_layer(raw.complete(features))
        return {"embedding": self.query_tower(transformed)}

    @tf.function(input_signature=[raw.ITEM_SIGNATURE])
    def candidate_embedding(self, features):
        transformed = self.tft_layer(raw.complete(features))
        return {"embedding": self.candidate_tower(transformed)}


def save(model, tft_output, export_dir: str) -> None:
    module = RetrievalModule(model, tft_output.transform_features_layer())
    signatures = {
        QUERY_SIGNATURE: module.query_embedding.get_concrete_function(),
        CANDIDATE_SIGNATURE: module.candidate_embedding.get_concrete_function(),
    }
    tf.saved_model.save(module, export_dir, signatures=signatures)
