"""The study under load and faults, as library pieces: app processes (``servers``), simulated
raters (``raters``), the study and the vote checks (``votes``), faults (``faults``) and the
scenarios built from them (``scenarios``). ``bench/load_study.py`` is the command line."""
