"""The default bundle orders results by the network's cosine and the named-cue fit (issue 14).

Real photo slideshows (scikit-image's photographs, through real ffmpeg) queried against the tiny
starter bundle's 28 real library tracks with ``vmnet query``: with the bundle's cue weight, a
fast, bright, warm clip gets livelier tracks (by their measured cues) and more major-key ones (by
the library's labels) than a slow, dark, cold one; with
``--cue-weight 0`` the order is the paper's (cosine, non-increasing). ``vmnet index --cue-weight``
stores the weight in the bundle.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from vmnet_core.bundle.cue_match import axis_leans
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
    """The top 5 real library tracks of ``vmnet query --json`` (the command ranks the corpus tracks too)."""
    assert main(["query", "--bundle", str(bundle), "--video", str(clip), "-k", "200", "--json", *extra]) == 0
    return [r for r in json.loads(capsys.readouterr().out) if r["id"].startswith("library-")][:5]


def _major_share(records: list[dict]) -> float:
    """Share of major keys among the records' tracks, by the library's own labels."""
    keys = {f"library-{t.title}": t.key for t in load_music_library()}
    return float(np.mean([keys[r["id"]].endswith("major") for r in records]))


def _arousal(bundle, records: list[dict]) -> float:
    """Mean arousal lean (tempo, onset rate, loudness; −1 … +1) of the records' tracks, from their stored cues."""
    catalog = load_bundle(bundle).catalog
    return float(np.mean([axis_leans(catalog.item("music", r["id"]).cues, "music")[0] for r in records]))


def test_the_default_bundle_fuses_the_cue_fit_and_follows_arousal_and_mode(tiny_bundle, clips, capsys):
    assert load_bundle(tiny_bundle).config.ranking.cue_weight == DEFAULT_CUE_WEIGHT
    fast, slow = (_query(capsys, tiny_bundle, clips[name]) for name in ("fast", "slow"))
    assert _major_share(fast) > _major_share(slow)
    assert _arousal(tiny_bundle, fast) > _arousal(tiny_bundle, slow)
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
