"""Helpers shared by the tests and the benchmarks: synthetic and hostile media made with the real
ffmpeg, launched demo and study servers, a private PostgreSQL cluster, study fixtures, sharded
extraction runs and the reference (naive) music descriptor.

It may import ``vmnet_core``, ``demo`` and ``study``; none of those, nor ``app.py``, ever imports it
(``tests/test_import_rules.py`` checks). Installed with the project (``pip install -e .``).
"""
