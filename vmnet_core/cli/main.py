"""The ``vmnet`` command line: one sub-command per module that registers itself here."""

from __future__ import annotations

import argparse
import importlib
import sys
from importlib.metadata import entry_points

from vmnet_core.errors import VmnetError

# Each module defines ``register(subparsers)`` which adds its sub-command(s) and sets ``func``.
# Every module is imported at each start, so they import torch, librosa and the bundle code inside
# the command functions (keeping `vmnet --help` and typos fast); cheap imports sit at module level.
COMMAND_MODULES = [
    "vmnet_core.cli.extract",     # extract, merge-stores, himv, import-features
    "vmnet_core.cli.model",       # train, evaluate
    "vmnet_core.cli.catalog",     # index, query
    "vmnet_core.cli.starter",     # starter
    "vmnet_core.cli.preview",     # preview
]
# Packages outside vmnet_core (the study) add commands through this entry-point group, so the
# core never imports them: ``[project.entry-points."vmnet.commands"] study = "study.cli"``.
PLUGIN_GROUP = "vmnet.commands"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vmnet", description="Content-based video–music retrieval (VM-NET).")
    sub = parser.add_subparsers(dest="command", required=True)
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name and name.startswith(exc.name):
                continue  # module not built yet / optional part not installed
            raise
        module.register(sub)

    for entry in entry_points(group=PLUGIN_GROUP):
        try:
            plugin = entry.load()
        except ModuleNotFoundError:
            continue  # the plugin's package (or one of its extras) is not installed
        plugin.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except VmnetError as exc:
        print(f"vmnet: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("vmnet: interrupted; run the same command again to resume.", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
