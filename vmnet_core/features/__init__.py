"""Features: the paper's descriptors and the stores that hold them.

Owns the 1140-d music descriptor (``music_descriptor``, its settings in ``music_config``), CNN frame
features with whitening PCA and pooling (``video_descriptor``), feature stores on disk (``store``;
per-item parts, consolidation and merging in ``parts``; precomputed vectors in ``imported``) and
resumable, sharded extraction from media files into a store (``extract``). May import ``vmnet_core.media`` and the foundation
modules (``errors``, ``atomic_io``, ``paths``); never ``learn``, ``bundle``, ``starter`` or ``cli``.
"""
