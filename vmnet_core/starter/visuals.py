"""The picture of a starter clip: moving shapes over a background, rendered from its factors (numpy).

Factor → picture (each visible in a single frame, since the video descriptor sees 1 frame/s):
- tempo_bpm: horizontal speed of the shapes, shown in a still frame by their motion trails
  (a feedback echo with a fixed time constant, so a trail's length is proportional to speed);
  a flash on every beat; cuts to a new layout on bar lines.
- mode/valence (+ tempo): lightness and yellow–blue warmth (see :mod:`palette`).
- energy: saturation and contrast (see :mod:`palette`), number of shapes, their bounce on the
  beat and their wiggle (the amount of motion), and the strength of the beat flash.
- timbre: texture family (see :mod:`textures`).
- register: vertical position (high pitch → high in the frame) and size (high → small).
Nuisance (never heard): shapes' exact form and placement, their directions and colour jitter,
the background pattern, the red/green hue side, figure/ground polarity, cuts every 1 or 2 bars.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from vmnet_core.starter.factors import ClipFactors, Nuisance
from vmnet_core.starter.palette import ColourPlan, colour_plan
from vmnet_core.starter.textures import TEXTURE_OF_TIMBRE, shape_mask

TRAIL_TIME_S = 0.12   # time constant of the motion-trail echo
FLASH_TIME_S = 0.08   # decay of the beat flash
BACKGROUND_PATTERNS = ("flat", "vertical", "horizontal", "radial", "waves")


@dataclass
class _Shape:
    keep: np.ndarray    # (h, w, 3) float32: 1 − alpha, repeated over the channels (contiguous maths is fast)
    lift: np.ndarray    # (h, w, 3) float32: what the shape adds to the background, alpha · (colour − background)
    x: float            # left edge at the start of the shot (px)
    y: float            # top edge at rest (px)
    speed: float        # horizontal speed (px/s, signed)
    bounce: float       # upward displacement on each beat (px, signed)
    wiggle: float       # horizontal wiggle amplitude (px)
    phase: float        # wiggle phase (rad)


def _shape_count(family: str, energy: float) -> int:
    base = 2 + 10 * energy
    return int(round({"dots": 2.5 * base, "stripes": 1 + 4 * energy}.get(family, base)))


def _shot_shapes(factors: ClipFactors, plan: ColourPlan, rng: np.random.Generator,
                 background: np.ndarray) -> list[_Shape]:
    """The shapes of one shot (between two cuts) over ``background`` ((H, W, 3) float32 RGB)."""
    height, width = background.shape[:2]
    family = TEXTURE_OF_TIMBRE[factors.timbre]
    size = height * (0.34 - 0.22 * factors.register)           # low register → large shapes
    centre_y = height * (0.82 - 0.64 * factors.register)       # high register → high in the frame
    spread_y = height * rng.uniform(0.05, 0.14)
    direction = 1.0 if rng.uniform() < 0.5 else -1.0
    speed = width * (0.08 + 0.6 * factors.tempo_unit)
    bounce = height * (0.02 + 0.10 * factors.energy)
    wiggle = width * 0.04 * factors.energy
    masks: list[np.ndarray] = []
    xs: list[float] = []
    ys: list[float] = []
    if family == "grid":  # rows of keys moving together
        key = shape_mask(family, size * rng.uniform(0.8, 1.2), width, rng)
        step = key.shape[1] * rng.uniform(1.4, 2.0)
        rows = 1 + int(round(2 * factors.energy))
        for row in range(rows):
            row_y = centre_y + (row - (rows - 1) / 2) * key.shape[0] * 1.15
            for col in range(int(np.ceil((width + key.shape[1]) / step))):
                masks.append(key)
                xs.append(col * step + row * step / 2)
                ys.append(row_y)
    else:
        for _ in range(_shape_count(family, factors.energy)):
            masks.append(shape_mask(family, size * rng.uniform(0.75, 1.25), width, rng))
            xs.append(rng.uniform(0, width))
            ys.append(rng.normal(centre_y, spread_y))
    colours = plan.shape_colours(rng, len(masks))
    opacity = 0.8 if family == "blobs" else 0.95
    shapes = []
    jitter = rng.uniform(0.75, 1.25, len(masks)) if family != "grid" else np.ones(len(masks))
    for i, (mask, colour) in enumerate(zip(masks, colours, strict=True)):
        alpha = np.repeat((mask * opacity)[..., None], 3, axis=-1).astype(np.float32)
        top = int(np.clip(ys[i] - mask.shape[0] / 2, 0, height - 1))
        under = background[top:top + mask.shape[0]].mean(axis=(0, 1))  # the background it moves over
        shapes.append(_Shape(keep=1.0 - alpha, lift=alpha * (colour - under), x=xs[i], y=ys[i] - mask.shape[0] / 2,
                             speed=direction * speed * jitter[i], bounce=bounce * (1 if i % 2 else -1),
                             wiggle=wiggle, phase=rng.uniform(0, 2 * np.pi)))
    return shapes


def _background_weights(pattern: str, width: int, height: int, rng: np.random.Generator) -> np.ndarray:
    """(H, W, 1) float32 in [0, 1]: where the background sits between its two gradient colours."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    y /= max(height - 1, 1)
    x /= max(width - 1, 1)
    if pattern == "vertical":
        weights = y
    elif pattern == "horizontal":
        weights = x
    elif pattern == "radial":
        weights = np.clip(np.hypot(x - 0.5, y - 0.5) / 0.71, 0, 1)
    elif pattern == "waves":
        kx, ky = rng.uniform(1, 4, 2) * 2 * np.pi
        weights = 0.5 + 0.25 * np.sin(kx * x + rng.uniform(0, 6.3)) + 0.25 * np.sin(ky * y + rng.uniform(0, 6.3))
    else:
        weights = np.full_like(x, 0.5)
    return weights[..., None].astype(np.float32)


def _paste(lift: np.ndarray, shape: _Shape, x: float, y: float) -> None:
    """Composite ``shape`` over the layer ``lift`` ((H, W, 3): frame minus background) with its
    left edge at ``x`` (wrapping around horizontally) and top at ``y``; clipped at the edges."""
    height, width = lift.shape[:2]
    h, w = shape.keep.shape[:2]
    left = int(x) % (width + w) - w
    top = int(y + 0.5) if y >= 0 else -int(-y + 0.5)
    x0, x1, y0, y1 = max(left, 0), min(left + w, width), max(top, 0), min(top + h, height)
    if x0 >= x1 or y0 >= y1:
        return
    piece = (slice(y0 - top, y1 - top), slice(x0 - left, x1 - left))
    region = lift[y0:y1, x0:x1]
    region *= shape.keep[piece]
    region += shape.lift[piece]


def render_frames(factors: ClipFactors, nuisance: Nuisance, seconds: float, fps: float = 10.0,
                  size: tuple[int, int] = (192, 192)) -> Iterator[np.ndarray]:
    """Yield the clip's frames, each (H, W, 3) uint8 RGB; ``size`` is (width, height), both even.

    round(seconds · fps) frames; identical for identical arguments.
    """
    width, height = size
    background_rng = np.random.default_rng(nuisance.background_seed)
    plan = colour_plan(factors, background_rng)
    ends = background_rng.uniform(0, 1)  # how far apart the background gradient's ends are (L*)
    colours = plan.background_colours(gradient=6 + 18 * ends)
    pattern = BACKGROUND_PATTERNS[int(background_rng.integers(len(BACKGROUND_PATTERNS)))]
    weights = _background_weights(pattern, width, height, background_rng)
    layout_rng = np.random.default_rng(nuisance.layout_seed)
    shot_s = factors.beat_s * 4 * int(layout_rng.choice([1, 2]))
    decay = float(np.exp(-1.0 / (fps * TRAIL_TIME_S)))
    flash_amount = 0.08 + 0.25 * factors.energy

    lift = np.zeros((height, width, 3), np.float32)  # frame − background: shapes and their trails
    frame = np.empty((height, width, 3), np.float32)
    shot, shapes, background = -1, [], np.empty_like(frame)
    for index in range(int(round(seconds * fps))):
        t = index / fps
        if int(t // shot_s) != shot:  # a cut on the bar line: new layout, flipped background
            shot = int(t // shot_s)
            flip = weights[::-1, ::-1] if shot % 2 else weights
            background = (colours[0] + (colours[1] - colours[0]) * flip).astype(np.float32)
            shapes = _shot_shapes(factors, plan, np.random.default_rng([nuisance.layout_seed, shot]), background)
            lift[:] = 0.0
        t_shot = t - shot * shot_s
        since_beat = t % factors.beat_s
        pulse = np.exp(-since_beat / 0.1)
        lift *= decay
        for shape in shapes:
            x = shape.x + shape.speed * t_shot + shape.wiggle * np.sin(np.pi * t / factors.beat_s + shape.phase)
            _paste(lift, shape, x, shape.y - shape.bounce * pulse)
        np.add(background, lift, out=frame)
        flash = flash_amount * np.exp(-since_beat / FLASH_TIME_S) + (0.3 if t_shot < 1.0 / fps else 0.0)
        flash = min(float(flash), 1.0)
        frame *= 255.0 * (1.0 - flash)  # brighten towards white by ``flash``, then to 0–255
        frame += 255.0 * flash + 0.5
        np.clip(frame, 0.0, 255.0, out=frame)
        yield frame.astype(np.uint8)
