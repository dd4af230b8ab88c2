"""The default bundle orders results by the network's cosine and the named-cue fit (issue 14).

Real photo slideshows (scikit-image's photographs, through real ffmpeg) queried against the tiny
starter bundle's 28 real library tracks with ``vmnet query``: with the bundle's cue weight, a
fast, bright, warm clip gets faster and more major-key tracks than a slow, dark, cold one; with
``--cue-weight 0`` the order is the paper's (cosine, non-increasing). ``vmnet index --cue-weight``
stores the weight in the bundle.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from vmnet_core.bundle.files import load_bundle
from vmnet_core.cli.main import main
from vmnet_core.datasets.music_library import load_music_library
from vmnet_core.starter.settings import DEFAULT_CUE_WEIGHT
from vmnet_testkit.cue_media import make_cue_media


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    media = make_cue_media(tmp_path_factory.mktemp("cue_clips"))
    return {"fast": media["fast_bright"], "slow": media["slow_dark"]}


def _query(capsys, bundle, clip, *extra: str) -> list[dict]:
    assert main(["query", "--bundle", str(bundle), "--video", str(clip), "-k", "5", "--json", *extra]) == 0
    return json.loads(capsys.readouterr().out)


def _labels(records: list[dict]) -> tuple[float, float]:
    """(mean BPM, share of major keys) of the records' labelled real tracks."""
    tracks = {f"library-{t.title}": t for t in load_music_library()}
    chosen = [tracks[r["id"]] for r in records]
    return float(np.mean([t.tempo_bpm for t in chosen])), float(np.mean([t.key.endswith("major") for t in chosen]))


def test_the_default_bundle_fuses_the_cue_fit_and_follows_tempo_and_mode(tiny_bundle, clips, capsys):
    assert load_bundle(tiny_bundle).config.ranking.cue_weight == DEFAULT_CUE_WEIGHT
    fast, slow = (_query(capsys, tiny_bundle, clips[name]) for name in ("fast", "slow"))
    assert all(r["id"].startswith("library-") for r in fast + slow)  # real tracks lead the default catalog
    (fast_bpm, fast_major), (slow_bpm, slow_major) = _labels(fast), _labels(slow)
    assert fast_bpm > slow_bpm and fast_major > slow_major
    assert any(r["explain"] for r in fast)  # the reasons it was chosen are named


def test_cue_weight_zero_gives_the_papers_cosine_order(tiny_bundle, clips, capsys):
    records = _query(capsys, tiny_bundle, clips["fast"], "--cue-weight", "0")
    scores = [r["score"] for r in records]
    assert scores == sorted(scores, reverse=True)
    assert main(["query", "--bundle", str(tiny_bundle), "--video", str(clips["fast"]), "--cue-weight", "-1"]) == 2
    assert "--cue-weight must be between 0" in capsys.readouterr().err


def test_vmnet_index_stores_the_cue_weight(tiny_bundle, tmp_path, capsys):
    bundle = shutil.copytree(tiny_bundle, tmp_path / "bundle")
    assert main(["index", "--bundle", str(bundle), "--cue-weight", "0"]) == 0
    assert "cosine alone" in capsys.readouterr().out
    assert load_bundle(bundle).config.ranking.cue_weight == 0.0
    assert main(["index", "--bundle", str(bundle), "--cue-weight", "2.5"]) == 0
    assert load_bundle(bundle).config.ranking.cue_weight == 2.5
