"""The ``vmnet`` command line: thin argument parsing over the layers below.

``main`` dispatches to one module per command family (``extract``, ``model``, ``catalog``,
``starter``); packages outside the core add commands through the ``vmnet.commands`` entry-point
group. May import every other part of ``vmnet_core``; nothing in ``vmnet_core`` imports it.
"""
