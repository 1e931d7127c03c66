"""Published Table 1 of the AdaEnsemble paper (Yan and Li): test AUC and LogLoss.

The figures were measured on the full Criteo, Avazu and iPinYou datasets with a random
70/10/20 split, batch size 4096 and embedding dimension 16. Results on samples or on the
synthetic data are not comparable to them; the tables print them only as a reference.
"""

from __future__ import annotations

from typing import NamedTuple


class PaperMetrics(NamedTuple):
    auc: float
    logloss: float


DATASETS = ("criteo", "avazu", "ipinyou")

# Model names follow baselines.registry.MODEL_NAMES, in the row order of Yan and Li's table.
TABLE1: dict[str, dict[str, PaperMetrics]] = {
    "lr": {
        "criteo": PaperMetrics(0.7924, 0.4577),
        "avazu": PaperMetrics(0.7533, 0.3952),
        "ipinyou": PaperMetrics(0.7692, 0.005605),
    },
    "fm": {
        "criteo": PaperMetrics(0.8030, 0.4487),
        "avazu": PaperMetrics(0.7652, 0.3889),
        "ipinyou": PaperMetrics(0.7737, 0.005576),
    },
    "dnn": {
        "criteo": PaperMetrics(0.8051, 0.4461),
        "avazu": PaperMetrics(0.7627, 0.3895),
        "ipinyou": PaperMetrics(0.7732, 0.005749),
    },
    "wide_deep": {
        "criteo": PaperMetrics(0.8062, 0.4451),
        "avazu": PaperMetrics(0.7637, 0.3889),
        "ipinyou": PaperMetrics(0.7763, 0.005589),
    },
    "deepfm": {
        "criteo": PaperMetrics(0.8069, 0.4445),
        "avazu": PaperMetrics(0.7665, 0.3879),
        "ipinyou": PaperMetrics(0.7749, 0.005609),
    },
    "deep_crossing": {
        "criteo": PaperMetrics(0.8068, 0.4456),
        "avazu": PaperMetrics(0.7628, 0.3891),
        "ipinyou": PaperMetrics(0.7706, 0.005657),
    },
    "dcn": {
        "criteo": PaperMetrics(0.8056, 0.4457),
        "avazu": PaperMetrics(0.7661, 0.3880),
        "ipinyou": PaperMetrics(0.7758, 0.005682),
    },
    "pnn": {
        "criteo": PaperMetrics(0.8083, 0.4433),
        "avazu": PaperMetrics(0.7663, 0.3882),
        "ipinyou": PaperMetrics(0.7783, 0.005584),
    },
    "xdeepfm": {
        "criteo": PaperMetrics(0.8077, 0.4439),
        "avazu": PaperMetrics(0.7668, 0.3878),
        "ipinyou": PaperMetrics(0.7772, 0.005664),
    },
    "autoint": {
        "criteo": PaperMetrics(0.8053, 0.4462),
        "avazu": PaperMetrics(0.7650, 0.3883),
        "ipinyou": PaperMetrics(0.7732, 0.005758),
    },
    "fibinet": {
        "criteo": PaperMetrics(0.8082, 0.4439),
        "avazu": PaperMetrics(0.7652, 0.3886),
        "ipinyou": PaperMetrics(0.7756, 0.005679),
    },
    "xdeepint": {
        "criteo": PaperMetrics(0.8111, 0.4408),
        "avazu": PaperMetrics(0.7672, 0.3876),
        "ipinyou": PaperMetrics(0.7790, 0.005567),
    },
    "dcn_v2": {
        "criteo": PaperMetrics(0.8086, 0.4433),
        "avazu": PaperMetrics(0.7662, 0.3882),
        "ipinyou": PaperMetrics(0.7765, 0.005593),
    },
    "adaensemble": {
        "criteo": PaperMetrics(0.8132, 0.4394),
        "avazu": PaperMetrics(0.7687, 0.3865),
        "ipinyou": PaperMetrics(0.7807, 0.005550),
    },
}

# Display names as Yan and Li print them.
DISPLAY_NAMES: dict[str, str] = {
    "lr": "LR",
    "fm": "FM",
    "dnn": "DNN",
    "wide_deep": "Wide&Deep",
    "deepfm": "DeepFM",
    "deep_crossing": "DeepCrossing",
    "dcn": "DCN",
    "pnn": "PNN",
    "xdeepfm": "xDeepFM",
    "autoint": "AutoInt",
    "fibinet": "FiBiNET",
    "xdeepint": "xDeepInt",
    "dcn_v2": "DCN V2",
    "adaensemble": "AdaEnsemble",
}


def paper_metrics(model: str, dataset: str) -> PaperMetrics | None:
    """Return the published figures of `model` on `dataset`, or None where Yan and Li have none."""
    return TABLE1.get(model, {}).get(dataset)
