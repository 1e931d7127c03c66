"""Reusable Keras 3 layers for CTR models, one layer per module.

Each helper adds only its own import lines below.
"""
from ada_keras.layers.field_embedding import FieldEmbedding
