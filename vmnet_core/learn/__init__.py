"""Learning: everything between feature arrays and embeddings.

Owns preprocessing (z-scores, whitening PCA fits), the two-branch network (``model``: ``encode_music``
/ ``encode_video``), the ranking and structure losses, the training loop with checkpoints
(``train``), Recall@K and structure metrics, the CCA and random baselines, and training plots.
Works on arrays and feature stores; may import ``features`` and the foundation modules, never
``bundle``, ``starter`` or ``cli``.
"""
