"""Reusable Keras 3 layers for CTR models, one layer per module.

Each helper adds only its own import lines below.
"""
from ada_keras.layers.field_embedding import FieldEmbedding
from ada_keras.layers.bilinear_interaction import BilinearInteraction
from ada_keras.layers.compressed_interaction_network import CompressedInteractionNetwork
from ada_keras.layers.cross_network import CrossNetwork
from ada_keras.layers.factorization_machine import FactorizationMachine
from ada_keras.layers.inner_product import InnerProduct
from ada_keras.layers.interacting_attention import InteractingAttention
from ada_keras.layers.linear_term import LinearTerm
from ada_keras.layers.mlp import MLP
from ada_keras.layers.outer_product import OuterProduct
from ada_keras.layers.residual_unit import ResidualUnit
from ada_keras.layers.squeeze_excitation import SqueezeExcitation
from ada_keras.layers.dense_expert import DenseExpert
from ada_keras.layers.conv_expert import ConvExpert
from ada_keras.layers.attention_expert import AttentionExpert
from ada_keras.layers.polynomial_expert import PolynomialExpert
from ada_keras.layers.cross_expert import CrossExpert
from ada_keras.layers.mixture_of_low_rank_cross import MixtureOfLowRankCross
from ada_keras.layers.noisy_cosine_gate import NoisyCosineGate
from ada_keras.layers.depth_controller import DepthController
from ada_keras.layers.estimator import Estimator
from ada_keras.layers.sparse_moe import SparseMoE
