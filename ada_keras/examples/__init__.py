"""Runnable examples of ada_keras; each module runs with ``python -m``."""
