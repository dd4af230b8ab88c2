"""Music-video material from real photographs: camera moves, cuts and colour grading.

Shared by ``bench/bench_real_content.py`` (the real-content check, kept out of training) and the
cue tests. Photographs are scikit-image's bundled ones (``skimage.data``); nothing is downloaded.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "coins", "hubble_deep_field", "immunohistochemistry",
          "retina", "colorwheel", "cat", "logo")


def photo(name: str) -> np.ndarray:
    """A scikit-image photograph as ``(H, W, 3)`` uint8 RGB (grey ones stacked to RGB)."""
    import skimage.data

    image = np.asarray(getattr(skimage.data, name)())
    if image.ndim == 2:
        image = np.stack([image] * 3, axis=-1)
    if image.dtype != np.uint8:
        image = (255 * (image / max(float(image.max()), 1e-9))).astype(np.uint8)
    return image[..., :3]


def grade(frame: np.ndarray, exposure: float = 1.0, warmth: float = 0.0, saturation: float = 1.0) -> np.ndarray:
    """A colour grade of ``(H, W, 3)`` uint8 RGB: ``exposure`` scales the light, ``warmth`` in
    [-1, 1] pushes red up and blue down (negative: the reverse), ``saturation`` scales the distance
    of each pixel from its grey."""
    rgb = frame.astype(np.float32)
    grey = rgb.mean(axis=-1, keepdims=True)
    rgb = grey + saturation * (rgb - grey)
    rgb = rgb * exposure
    rgb[..., 0] *= 1.0 + 0.35 * warmth
    rgb[..., 2] *= 1.0 - 0.35 * warmth
    return np.clip(rgb, 0, 255).astype(np.uint8)


def ken_burns(image: np.ndarray, n_frames: int, size: tuple[int, int], zoom: float = 1.15,
              pan: tuple[float, float] = (0.1, 0.0)) -> Iterator[np.ndarray]:
    """``n_frames`` frames ``(h, w, 3)`` of a slow zoom (1 → ``zoom``) and pan (share of the free
    margin, x and y) over ``image``; nearest-neighbour sampling, no extra dependencies."""
    height, width = image.shape[:2]
    out_w, out_h = size
    base = min(width / out_w, height / out_h)  # source pixels per output pixel at zoom 1
    for i in range(n_frames):
        t = i / max(n_frames - 1, 1)
        scale = base / (1.0 + (zoom - 1.0) * t)
        view_w, view_h = out_w * scale, out_h * scale
        cx = width / 2 + pan[0] * t * (width - view_w) / 2
        cy = height / 2 + pan[1] * t * (height - view_h) / 2
        xs = np.clip((cx - view_w / 2 + (np.arange(out_w) + 0.5) * scale).astype(int), 0, width - 1)
        ys = np.clip((cy - view_h / 2 + (np.arange(out_h) + 0.5) * scale).astype(int), 0, height - 1)
        yield image[ys][:, xs]


def slideshow(names: list[str], shot_s: float, seconds: float, fps: float, size: tuple[int, int] = (160, 120),
              exposure: float = 1.0, warmth: float = 0.0, saturation: float = 1.0, zoom: float = 1.15,
              pan: float = 0.3) -> Iterator[np.ndarray]:
    """A graded photo slideshow: a cut every ``shot_s`` seconds to the next photo of ``names``
    (cycling), each shot a Ken Burns move (zoom 1 → ``zoom``, pan over ``pan`` of the margin,
    alternating directions); ``seconds`` long at ``fps``."""
    per_shot = max(1, int(round(shot_s * fps)))
    total = int(round(seconds * fps))
    images = [photo(name) for name in names]
    shot = 0
    while total > 0:
        count = min(per_shot, total)
        move = (pan if shot % 2 else -pan, pan / 2 if shot % 3 else -pan / 2)
        for frame in ken_burns(images[shot % len(images)], count, size, zoom=zoom, pan=move):
            yield grade(frame, exposure, warmth, saturation)
        total -= count
        shot += 1
