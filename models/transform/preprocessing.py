"""Transform's user code: vocabularies, buckets and tokenised titles.

Every output is a dense tensor of fixed width, so the trainers and the
servables need no sparse handling. Ids are 1-based where 0 means padding or
out-of-vocabulary; vocabulary sizes are read back from the Transform output.
"""

from __future__ import annotations

import tensorflow as tf
import tensorflow_transform as tft

from models import features

_AGE_BOUNDARIES = [18.0, 25.0, 35.0, 45.0, 50.0, 56.0, 65.0]


def _vocab_ids(values: tf.Tensor, name: str) -> tf.Tensor:
    """Dense string [batch] -> int64 [batch]; 0 is out-of-vocabulary."""
    ids = tft.compute_and_apply_vocabulary(values, vocab_filename=name, default_value=-1)
    return ids + 1


def _padded_ids(tokens: tf.RaggedTensor, name: str, width: int, top_k=None) -> tf.Tensor:
    """Ragged string tokens -> int64 [batch, width]; 0 pads, 1 is out-of-vocabulary."""
    flat = tft.compute_and_apply_vocabulary(tokens.flat_values, vocab_filename=name,
                                            top_k=top_k, default_value=-1)
    ids = tokens.with_flat_values(flat + 2)
    return ids.to_tensor(default_value=0, shape=[None, width])


def _attribute_ids(gender: tf.Tensor, occupation: tf.Tensor, genres: tf.RaggedTensor):
    """One vocabulary for the three small categorical features, each token prefixed with its
    feature's name ("gender=F", "genres=Drama"): tf.Transform runs a Beam analysis per
    vocabulary, about 2.3 s each before any data (the Transform step's fixed cost on 100
    interactions: 27.0 s with the three vocabularies, 22.4 s without two of them).

    Returns:
      (gender ids int64 [batch], occupation ids int64 [batch], 0 = out-of-vocabulary; genre ids
      int64 [batch, MAX_GENRES], 0 pads, 1 is out-of-vocabulary).
    """
    def tokens(name, values):
        return tf.strings.join([name + "=", values])

    gender, occupation = tokens(features.GENDER, gender), tokens(features.OCCUPATION, occupation)
    genres = genres.with_flat_values(tokens(features.GENRES, genres.flat_values))
    vocab = tft.vocabulary(tf.concat([gender, occupation, genres.flat_values], axis=0),
                           vocab_filename=features.ATTRIBUTE_VOCAB)

    def ids(values):
        return tft.apply_vocabulary(values, vocab, default_value=-1)

    genre_ids = genres.with_flat_values(ids(genres.flat_values) + 2)
    return (ids(gender) + 1, ids(occupation) + 1,
            genre_ids.to_tensor(default_value=0, shape=[None, features.MAX_GENRES]))


def _item_ids(item_id: tf.Tensor, history: tf.RaggedTensor):
    """One item vocabulary for the interacted item and the history items.

    Returns:
      (item ids int64 [batch], 0 = out-of-vocabulary; history ids int64
      [batch, MAX_HISTORY], the latest items, 0 pads or marks an unknown item).
    """
    vocab = tft.vocabulary(item_id, vocab_filename=features.ITEM_VOCAB)
    ids = tft.apply_vocabulary(item_id, vocab, default_value=-1) + 1
    latest = history[:, -features.MAX_HISTORY:]
    history_ids = latest.with_flat_values(
        tft.apply_vocabulary(latest.flat_values, vocab, default_value=-1) + 1)
    return ids, history_ids.to_tensor(default_value=0, shape=[None, features.MAX_HISTORY])


def _words(text: tf.Tensor) -> tf.RaggedTensor:
    """Lower-cased words of string [batch]. Unicode-aware: 'Misérables' and '千と千尋' are
    words, not runs of separators."""
    text = tf.strings.lower(text, encoding="utf-8")
    return tf.strings.split(tf.strings.regex_replace(text, r"[^\p{L}\p{N}' ]", " "))


def _squeeze(tensor: tf.Tensor) -> tf.Tensor:
    return tf.reshape(tensor, [-1])


def preprocessing_fn(inputs):
    """tf.Transform callback.

    Args:
      inputs: raw features; fixed-length ones as [batch, 1], genres, tags and history as
        SparseTensors of strings.

    Returns:
      user_idx, item_idx, gender_idx, occupation_idx, age_bucket, year_bucket:
        int64 [batch]; genre_ids: int64 [batch, MAX_GENRES];
        title_tokens: int64 [batch, MAX_TITLE_TOKENS + MAX_TAG_TOKENS] (title words, then
        tag words); history_ids: int64
        [batch, MAX_HISTORY] (item ids, 0 pads); time_scaled: float32 [batch],
        0 to 1 over the training period; rating: float32 [batch].
    """
    item_idx, history_ids = _item_ids(_squeeze(inputs[features.ITEM_ID]),
                                      tf.RaggedTensor.from_sparse(inputs[features.HISTORY]))
    gender_idx, occupation_idx, genre_ids = _attribute_ids(
        _squeeze(inputs[features.GENDER]), _squeeze(inputs[features.OCCUPATION]),
        tf.RaggedTensor.from_sparse(inputs[features.GENRES]))
    out = {
        features.USER_IDX: _vocab_ids(_squeeze(inputs[features.USER_ID]), features.USER_VOCAB),
        features.ITEM_IDX: item_idx,
        features.HISTORY_IDS: history_ids,
        features.GENDER_IDX: gender_idx,
        features.OCCUPATION_IDX: occupation_idx,
        features.GENRE_IDS: genre_ids,
    }
    age = tf.cast(_squeeze(inputs[features.AGE]), tf.float32)
    # Fixed, interpretable age groups (those of MovieLens 1M); 0 is unknown.
    out[features.AGE_BUCKET] = tf.where(
        age > 0, tf.raw_ops.Bucketize(input=age, boundaries=_AGE_BOUNDARIES) + 1, 0)
    out[features.AGE_BUCKET] = tf.cast(out[features.AGE_BUCKET], tf.int64)
    year = tf.cast(_squeeze(inputs[features.YEAR]), tf.float32)
    out[features.YEAR_BUCKET] = tf.where(
        year > 0, tft.bucketize(year, features.YEAR_BUCKETS - 1) + 1, tf.zeros_like(year, tf.int64))

    # The item text: the title's words, then its tags' words (none without a tags file), in
    # one vocabulary.
    title_words = _words(_squeeze(inputs[features.TITLE]))[:, :features.MAX_TITLE_TOKENS]
    tags = tf.sparse.to_dense(inputs[features.TAGS], default_value="")
    tag_words = _words(tf.strings.reduce_join(tags, axis=1, separator=" "))
    tokens = tf.concat([title_words, tag_words[:, :features.MAX_TAG_TOKENS]], axis=1)
    out[features.TITLE_TOKENS] = _padded_ids(
        tokens, features.TITLE_VOCAB, features.MAX_TITLE_TOKENS + features.MAX_TAG_TOKENS,
        top_k=20_000)

    out[features.TIME_SCALED] = tft.scale_to_0_1(tf.cast(_squeeze(inputs[features.TIMESTAMP]), tf.float32))
    out[features.RATING_OUT] = tf.cast(_squeeze(inputs[features.RATING]), tf.float32)
    return out
