"""The recommender servable: one request in, one finished list out.

retrieve (the index servable) -> rank (the ranking model) -> top K. Signatures:
  serving_default(user_id [batch] string) -> item_ids [batch, K] string, scores [batch, K] float
  retrieve(user_id) -> the retrieval stage's own top K, for comparison and debugging
  lookup_titles(item_ids [n]) -> titles [n]
Unknown users get the index's popularity list unchanged.
"""

from __future__ import annotations

import tensorflow as tf

from components.ranking.model import pair_features

USER_ID_SPEC = tf.TensorSpec([None], tf.string, name="user_id")


class Recommender(tf.Module):
    """Chains a loaded index servable and a trained ranker.

    Args:
      index: the loaded retrieval servable (components/index/servable.py).
      ranker: a trained Ranker.
      top_k: list length of the signatures.
    """

    def __init__(self, index, ranker, top_k: int):
        super().__init__()
        self.index = index
        self.ranker = ranker
        self.top_k = int(top_k)

    @tf.function(input_signature=[USER_ID_SPEC])
    def recommend(self, user_id):
        positions, scores, known = self.index.retrieve_positions(user_id)
        rows = self.index.lookup_users(user_id)
        rows = tf.broadcast_to(rows[:, None], tf.shape(positions))
        features = pair_features(self.index.user_embeddings, self.index.item_embeddings,
                                 tf.math.log1p(self.index.popularity), rows, positions)
        ranked = tf.where(known[:, None], self.ranker(features), scores)
        # Excluded items come back from retrieval with -inf; keep them last.
        ranked = tf.where(tf.math.is_finite(scores), ranked, -1e30)
        k = tf.minimum(self.top_k, tf.shape(positions)[1])
        top_scores, order = tf.math.top_k(ranked, k=k)
        top = tf.gather(positions, order, batch_dims=1)
        return {"item_ids": tf.gather(self.index.item_ids, top), "scores": top_scores}

    @tf.function(input_signature=[USER_ID_SPEC])
    def retrieve(self, user_id):
        positions, scores, _ = self.index.retrieve_positions(user_id)
        k = tf.minimum(self.top_k, tf.shape(positions)[1])
        return {"item_ids": tf.gather(self.index.item_ids, positions[:, :k]), "scores": scores[:, :k]}


def save(recommender: Recommender, export_dir: str) -> None:
    signatures = {
        "serving_default": recommender.recommend.get_concrete_function(),
        "retrieve": recommender.retrieve.get_concrete_function(),
        "lookup_titles": recommender.index.lookup_titles,
    }
    options = tf.saved_model.SaveOptions(namespace_whitelist=["Scann"])
    tf.saved_model.save(recommender, export_dir, signatures=signatures, options=options)
