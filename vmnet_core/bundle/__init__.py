"""Bundles and search: a trained model as a folder, its catalog, and queries against it.

Owns the bundle format (``files``: save/load; ``config``: config.json as typed sections), the recipes that turn a store into a bundle
(``recipes``: ``vmnet train``) and score it (``evaluation``: ``vmnet evaluate``), the catalog of
embedded items with exact search (``catalog``; its records in ``catalog_items``) and its optional faiss IVF index (``ann_index``),
and media-file queries (``retrieval``). May import ``learn``, ``features``, ``datasets``, ``media``
and the foundation modules; never ``starter`` or ``cli``.
"""
