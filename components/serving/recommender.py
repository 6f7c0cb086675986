"""The recommender servable: one request in, one finished list out.

retrieve (the index servable) -> rank (the ranking model) -> top K. Signatures:
  serving_default(user_id [batch] string) -> item_ids [batch, K] string, scores [batch, K] float
  recommend_with_context(user_id, age, gender, occupation [batch], history [batch, n] item
    ids oldest first, padded with "") -> the same outputs; "" / 0 mean not given. A
    brand-new user with a history or demographics gets a personal list.
  retrieve(user_id) -> the retrieval stage's own top K, for comparison and debugging
  lookup_titles(item_ids [n]) -> titles [n]
A request with nothing to personalise on gets the index's popularity list unchanged.
"""

from __future__ import annotations

import os

import tensorflow as tf

from components.index.servable import CONTEXT_SIGNATURE
from components.ranking.model import pair_features
from components.serving import remote

USER_ID_SPEC = tf.TensorSpec([None], tf.string, name="user_id")


class Recommender(tf.Module):
    """Chains a loaded index servable and a trained ranker.

    Args:
      index: the loaded retrieval servable (components/index/servable.py).
      ranker: a trained Ranker.
      top_k: list length of the signatures.
      use_ranker: False serves retrieval's own order (the ranking trainer
        decides, from held-out NDCG).
    """

    def __init__(self, index, ranker, top_k: int, use_ranker: bool = True):
        super().__init__()
        self.index = index
        self.ranker = ranker
        self.top_k = int(top_k)
        self.use_ranker = bool(use_ranker)

    @tf.function(input_signature=[USER_ID_SPEC])
    def recommend(self, user_id):
        positions, scores, personal, query = self.index.retrieve_positions(user_id)
        return self._rank(positions, scores, personal, query)

    @tf.function(input_signature=[CONTEXT_SIGNATURE])
    def recommend_with_context(self, context):
        positions, scores, personal, query = self.index.retrieve_positions_with_context(context)
        return self._rank(positions, scores, personal, query)

    def _rank(self, positions, scores, personal, query):
        """Ranks personal candidate lists; popularity lists stay as they are."""
        if not self.use_ranker:
            return self._top(positions, scores)
        rows = tf.broadcast_to(tf.range(tf.shape(positions)[0])[:, None], tf.shape(positions))
        features = pair_features(query, self.index.item_embeddings,
                                 tf.math.log1p(self.index.popularity), rows, positions)
        ranked = tf.where(personal[:, None], self.ranker(features), scores)
        # Excluded items come back from retrieval with -inf; keep them last.
        return self._top(positions, tf.where(tf.math.is_finite(scores), ranked, -1e30))

    def _top(self, positions, scores):
        k = tf.minimum(self.top_k, tf.shape(positions)[1])
        top_scores, order = tf.math.top_k(scores, k=k)
        top = tf.gather(positions, order, batch_dims=1)
        return {"item_ids": tf.gather(self.index.item_ids, top), "scores": top_scores}

    @tf.function(input_signature=[USER_ID_SPEC])
    def retrieve(self, user_id):
        positions, scores, _, _ = self.index.retrieve_positions(user_id)
        return self._top(positions, scores)


WARMUP_FILE = os.path.join("assets.extra", "tf_serving_warmup_requests")


def warmup_requests(user_id: str, item_ids) -> list:
    """PredictRequests for every signature TF Serving answers, with real inputs.

    TF Serving replays the warm-up file of a model version before serving it,
    so the first user request does not pay for loading tables and compiling
    the graph.
    """
    items = list(item_ids[:3]) or [""]
    _, context = remote.request_inputs("warmup-new-user", history=items)
    calls = [
        ("serving_default", {"user_id": [user_id, "warmup-unknown-user"]}),
        ("recommend_with_context", context),
        ("retrieve", {"user_id": [user_id]}),
        ("lookup_titles", {"item_ids": items}),
    ]
    return [remote.predict_request(signature, inputs) for signature, inputs in calls]


def write_warmup(export_dir: str, requests: list) -> str:
    """Writes ``requests`` as TF Serving's warm-up file (PredictionLog records) of the model."""
    from tensorflow_serving.apis import prediction_log_pb2

    path = os.path.join(export_dir, WARMUP_FILE)
    tf.io.gfile.makedirs(os.path.dirname(path))
    with tf.io.TFRecordWriter(path) as writer:
        for request in requests:
            log = prediction_log_pb2.PredictionLog(
                predict_log=prediction_log_pb2.PredictLog(request=request))
            writer.write(log.SerializeToString())
    return path


def save(recommender: Recommender, export_dir: str) -> None:
    """Saves the signatures TF Serving serves and their warm-up requests."""
    signatures = {
        "serving_default": recommender.recommend.get_concrete_function(),
        "recommend_with_context": recommender.recommend_with_context.get_concrete_function(),
        "retrieve": recommender.retrieve.get_concrete_function(),
        "lookup_titles": recommender.index.lookup_titles,
    }
    options = tf.saved_model.SaveOptions(namespace_whitelist=["Scann"])
    tf.saved_model.save(recommender, export_dir, signatures=signatures, options=options)
    users = recommender.index.user_ids.numpy()
    items = [i.decode("utf-8") for i in recommender.index.item_ids.numpy()[:3]]
    write_warmup(export_dir, warmup_requests(users[0].decode("utf-8") if len(users) else "", items))
