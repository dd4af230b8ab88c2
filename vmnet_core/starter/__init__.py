"""The starter: a procedural corpus of music videos and the default bundle built from it.

Owns the hidden factors shared by sound and picture (``factors``), the synthetic music and
pictures (``audio_synth``, ``instruments``, ``visuals``, ``palette``, ``textures``), the corpus on
disk (``corpus``), the pipeline corpus → store → bundle → catalog (``pipeline``, its settings in ``settings``) and its
real-library probe (``probe``). May import every layer below it (``media``, ``features``,
``datasets``, ``learn``, ``bundle``); only ``cli`` and the apps import it.
"""
