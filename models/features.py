"""Feature keys shared by ingestion, Transform, the trainers, the indexer and serving.

Raw keys are the columns of the canonical input layout; transformed keys are
what `preprocessing_fn` emits. Nothing else in the project spells these strings.
"""

# Raw interaction columns.
USER_ID = "user_id"
ITEM_ID = "item_id"
TIMESTAMP = "timestamp"
RATING = "rating"
# The item ids the user interacted with before this interaction, oldest first,
# at most MAX_HISTORY of them (the latest).
HISTORY = "history"

# Raw user side features.
AGE = "age"
GENDER = "gender"
OCCUPATION = "occupation"
USER_FEATURES = (AGE, GENDER, OCCUPATION)

# Raw item side features.
TITLE = "title"
GENRES = "genres"
YEAR = "year"
# Words people attached to the item (ml-latest's tags.csv; a canonical items.csv's optional
# '|'-separated column), most often given first: item text beside the title.
TAGS = "tags"
ITEM_FEATURES = (TITLE, GENRES, YEAR, TAGS)

# Values used where a side feature is unknown.
UNKNOWN = ""
UNKNOWN_NUMBER = 0

# Transformed features (outputs of preprocessing_fn).
USER_IDX = "user_idx"
ITEM_IDX = "item_idx"
AGE_BUCKET = "age_bucket"
GENDER_IDX = "gender_idx"
OCCUPATION_IDX = "occupation_idx"
GENRE_IDS = "genre_ids"
TITLE_TOKENS = "title_tokens"
YEAR_BUCKET = "year_bucket"
HISTORY_IDS = "history_ids"
TIME_SCALED = "time_scaled"
RATING_OUT = "rating"

# Transform vocabulary names, read back by the trainers for their sizes.
USER_VOCAB = "user_id_vocab"
ITEM_VOCAB = "item_id_vocab"
# Gender, occupation and genres have few values each: one vocabulary holds the three, each
# token prefixed with its feature's name, for tf.Transform pays a Beam analysis per vocabulary
# whatever its size (models/transform/preprocessing.py). The three names are one file; each of
# their embedding tables is as long as it, a few dozen rows.
ATTRIBUTE_VOCAB = "attribute_vocab"
GENDER_VOCAB = OCCUPATION_VOCAB = GENRE_VOCAB = ATTRIBUTE_VOCAB
TITLE_VOCAB = "title_token_vocab"
# Every vocabulary file Transform writes, each once.
VOCABS = (USER_VOCAB, ITEM_VOCAB, ATTRIBUTE_VOCAB, TITLE_VOCAB)

# Fixed widths of padded multi-valued features; id 0 is padding.
MAX_GENRES = 6
MAX_TITLE_TOKENS = 8
# The item text (title_tokens): the title's first MAX_TITLE_TOKENS words, then the tags' first
# MAX_TAG_TOKENS words; MAX_TAGS tags kept per item.
MAX_TAG_TOKENS = 8
MAX_TAGS = 20
MAX_HISTORY = 50
AGE_BUCKETS = 8
YEAR_BUCKETS = 10

# Split names.
TRAIN = "train"
EVAL = "eval"
CATALOGUE = "items"
