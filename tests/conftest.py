"""Shared pytest fixtures: the real dataset samples and a quiet TensorFlow."""

import os
import pathlib

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest

REPOSITORY_ROOT = pathlib.Path(__file__).resolve().parents[1]

# The real samples live beside the checkout, never inside it (their licences forbid
# redistribution). ADA_KERAS_SHARED_DATA overrides the location.
SHARED_DATA = pathlib.Path(
    os.environ.get("ADA_KERAS_SHARED_DATA", REPOSITORY_ROOT.parent / "shared" / "data")
)


@pytest.fixture(scope="session")
def shared_data() -> pathlib.Path:
    """Path of the folder with the Criteo, Avazu and iPinYou samples."""
    if not SHARED_DATA.is_dir():
        pytest.fail(
            f"dataset samples not found at {SHARED_DATA}; place the shared/ folder beside "
            "the repository or set ADA_KERAS_SHARED_DATA"
        )
    return SHARED_DATA
