"""Train AdaEnsemble with bi-level updates on planted interactions; print routing.

Run: ``python -m ada_keras.examples.routing_demo [--rows 30000] [--epochs 4]``

The data are generated here, so the example needs no dataset: F categorical fields whose
click logit is a sum of planted pairwise and three-way interaction terms
amplitude * s_a(id_a) * s_b(id_b) (* s_c(id_c)) with random signs s = +-1 per id, plus a
small first-order part. A product of independent zero-mean signs is uncorrelated with
every single field, so logistic regression (LR) captures only the first-order part.

The script trains LR and AdaEnsemble, prints both test AUCs (exact, rank-based), then the
share of test examples whose largest gate picks each expert in every layer and the
distribution of exit depths.
"""

import argparse
import logging

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from ada_keras.layers import FieldEmbedding
from ada_keras.metrics import exact_auc
from ada_keras.model import AdaEnsemble
from ada_keras.training import CTRModel, with_alpha_batches

logger = logging.getLogger(__name__)


def make_planted_data(rows: int, num_fields: int, vocabulary_size: int, seed: int):
    """Return ids int32 [rows, F], labels float32 [rows, 1] with planted interactions."""
    rng = np.random.default_rng(seed)
    ids = rng.integers(0, vocabulary_size, size=(rows, num_fields)).astype(np.int32)
    signs = rng.choice([-1.0, 1.0], size=(num_fields, vocabulary_size))
    logit = 0.3 * rng.normal(size=(num_fields, vocabulary_size))[np.arange(num_fields), ids].sum(1)
    terms = [(0, 1), (2, 3), (4, 5), (1, 6), (0, 3, 7)]
    for term in terms:
        product = np.ones(rows)
        for field in term:
            product *= signs[field, ids[:, field]]
        logit += 1.5 * product
    probability = 1.0 / (1.0 + np.exp(-(logit - 0.5)))
    labels = (rng.random(rows) < probability).astype(np.float32)[:, None]
    return ids, labels


class LogisticRegression(CTRModel):
    """LR on one-hot ids: sigmoid(b + sum_i w_i[id_i])."""

    def __init__(self, vocabulary_sizes, **kwargs):
        super().__init__(**kwargs)
        self.weights_per_id = FieldEmbedding(vocabulary_sizes, 1, embeddings_initializer="zeros")
        self.bias = keras.layers.Dense(1)

    def call(self, ids, training=False):
        total = ops.sum(self.weights_per_id(ids), axis=1)  # [batch, 1]
        return ops.sigmoid(self.bias(total))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=30000, help="examples in all splits")
    parser.add_argument("--fields", type=int, default=8, help="number of categorical fields")
    parser.add_argument("--vocabulary", type=int, default=50, help="ids per field")
    parser.add_argument("--epochs", type=int, default=4, help="training epochs")
    parser.add_argument("--batch-size", type=int, default=256, help="examples per batch")
    parser.add_argument("--seed", type=int, default=0, help="seed of data and models")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    keras.utils.set_random_seed(args.seed)

    ids, labels = make_planted_data(args.rows, args.fields, args.vocabulary, args.seed)
    train_end, validation_end = int(0.7 * args.rows), int(0.8 * args.rows)
    train = tf.data.Dataset.from_tensor_slices((ids[:train_end], labels[:train_end]))
    train = train.shuffle(train_end, seed=args.seed).batch(args.batch_size)
    validation = tf.data.Dataset.from_tensor_slices(
        (ids[train_end:validation_end], labels[train_end:validation_end])
    ).shuffle(validation_end - train_end, seed=args.seed).batch(args.batch_size)
    test_ids, test_labels = ids[validation_end:], labels[validation_end:, 0]
    vocabulary_sizes = [args.vocabulary] * args.fields

    lr = LogisticRegression(vocabulary_sizes)
    lr.compile(optimizer=keras.optimizers.Adam(0.01))
    lr.fit(train, epochs=args.epochs, verbose=0, shuffle=False)
    lr_auc = exact_auc(test_labels, lr.predict(test_ids, batch_size=4096, verbose=0))

    model = AdaEnsemble(vocabulary_sizes, embedding_dim=8, num_layers=3, top_k=2,
                        anneal_steps=100, seed=args.seed)
    model.compile(optimizer=keras.optimizers.Adam(0.003),
                  alpha_optimizer=keras.optimizers.Adam(0.003))
    model.fit(with_alpha_batches(train, validation), epochs=args.epochs, verbose=2,
              shuffle=False)
    ada_auc = exact_auc(test_labels, model.predict(test_ids, batch_size=4096, verbose=0))
    # evaluate resets the routing counters, so the statistics cover the test split once.
    model.evaluate(test_ids, labels[validation_end:], batch_size=4096, verbose=0)

    logger.info("test AUC: LR %.4f, AdaEnsemble %.4f", lr_auc, ada_auc)
    logger.info("share of test examples by top-1 expert, and exit share per layer:\n%s",
                model.format_routing_statistics())


if __name__ == "__main__":
    main()
