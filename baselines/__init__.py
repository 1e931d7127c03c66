"""The thirteen CTR baselines, one module per model, and the name registry.

Every model subclasses `ada_keras.training.CTRModel`: ids int32 `[batch, F]` in, click
probability float32 `[batch, 1]` out. Build them by name with
`baselines.registry.build_model`.
"""
