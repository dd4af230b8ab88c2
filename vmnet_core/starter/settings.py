"""The starter bundle's settings, apart from the pipeline so ``vmnet``'s argument parser can show their
defaults without importing torch and librosa."""

from __future__ import annotations

from dataclasses import dataclass

# The default bundle's ranking: network cosine + this × the named-cue fit, both standardised
# (vmnet_core/bundle/cue_match.py). Chosen on the tuning set of the real-content check (docs/cues.md).
DEFAULT_CUE_WEIGHT = 2.0


@dataclass(frozen=True)
class StarterSettings:
    """How the default bundle is made; the defaults fit the 6-minute first-start budget on 2 cores.

    See docs/starter-corpus.md ("The default bundle") for the measured cost of each step.
    """

    clips: int = 100  # procedural music videos in the corpus (25 % test, 10 % val, 65 % train)
    seconds: float = 30.0  # length of each clip (≥ the 29.12-s music window: no zero padding)
    seed: int = 0
    workers: int | None = None  # processes for generation/extraction (None: every usable core)
    max_steps: int = 150  # training steps (one step = one pass over the train split; R@K is flat by then)
    val_every: int = 150  # validate and checkpoint every this many steps (a 10-pair val split is too
    #                       small to pick a step by: its R@10 is 1.0 throughout, so the last step is kept)
    patience: int = 0  # stop after this many validations without improvement (0: never)
    batch_size: int = 1000  # the paper's; clamped to the train split's size
    video_components: int | None = None  # video input width (None: the data-aware default; paper: 1024)
    index_real_library: bool = True  # add the 28 tracks of immich-memories-music to the catalog
    cue_weight: float = DEFAULT_CUE_WEIGHT  # ranking: weight of the named-cue fit (0: the paper's cosine order)
