"""Creating studies (candidates CSV and bundle routes), the study config, and the `vmnet study` commands."""

from __future__ import annotations

import argparse
import csv
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import func, select

from study import service
from study.cli import register
from study.config import StudyConfig
from study.create import clips_from_bundle, clips_from_csv, create_study, practice_last
from study.db import open_database
from study.design import CHECK_CONDITION, DesignSpec, plan_slot
from study.models import Assignment, Candidate, Stimulus, Study
from study.stimuli import ClipSource
from vmnet_core.errors import VmnetError
from vmnet_core.media import probe
from vmnet_testkit.study_helpers import CONDITIONS, make_clips, write_candidates_csv

ROOT = Path(__file__).resolve().parents[1]
OPAQUE = re.compile(r"^[0-9a-f]{32}\.mp4$")


def run_cli(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="vmnet")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(list(argv))
    return int(args.func(args) or 0)


def test_the_documented_config_parses():
    text = (ROOT / "docs" / "study.md").read_text(encoding="utf-8")
    block = text.split("```toml\n", 1)[1].split("```", 1)[0]
    import tomllib

    config = StudyConfig.from_dict(tomllib.loads(block))
    assert config.name == "vmnet-vs-random-2026" and config.headline_pair == ("vmnet", "random")
    assert config.models == {"vmnet_no_structure": "bundles/no-structure"}
    assert StudyConfig.from_dict(config.to_dict()) == config


@pytest.mark.parametrize("change,message", [
    ({"colour": "red"}, "Unknown study config key colour"),
    ({"attention": {"kind": "loud"}}, "attention.kind"),
    ({"pairs": [["vmnet", "vmnet"]]}, "two different conditions"),
    ({"tie_rule": "coin"}, "tie_rule"),
    ({"conditions": ["x"]}, "at least two"),
])
def test_bad_configs_are_refused_with_a_sentence(change, message):
    with pytest.raises(VmnetError, match=message):
        StudyConfig.from_dict({"name": "s", **change})


@pytest.fixture(scope="module")
def csv_study(tmp_path_factory):
    folder = tmp_path_factory.mktemp("create")
    clips = make_clips(folder, n=3, seconds=1.2)  # the last one is kept for the practice trial
    candidates = write_candidates_csv(folder, clips)
    config = folder / "study.toml"
    config.write_text('name = "cli-study"\nseed = 3\nswapped_repeats = 1\nparticipants = 4\n'
                      '[attention]\ncount = 1\nkind = "silence"\n', encoding="utf-8")
    url = f"sqlite:///{folder / 'study.db'}"
    assert run_cli("study", "create", "--candidates", str(candidates), "--config", str(config), "--db", url,
                   "--media-dir", str(folder / "media"), "--quiet") == 0
    return folder, url, clips


def test_create_premuxes_opaque_browser_ready_files_and_stores_the_plan(csv_study):
    folder, url, clips = csv_study
    db = open_database(url)
    try:
        with db.read() as s:
            study = s.scalar(select(Study))
            candidates = s.scalars(select(Candidate)).all()
            stimuli = s.scalars(select(Stimulus).order_by(Stimulus.ordinal)).all()
            assignments = s.scalars(select(Assignment).order_by(Assignment.slot)).all()
            plans = [[(t.position, t.kind, t.candidate_a.condition, t.candidate_b.condition) for t in a.trials]
                     for a in assignments]
            practice_clips = {t.stimulus_id for a in assignments for t in a.trials if t.kind == "practice"}
            scored_clips = {t.stimulus_id for a in assignments for t in a.trials if t.kind != "practice"}
        media_dir = Path(study.media_dir)
        assert media_dir.parent == (folder / "media").resolve() and re.fullmatch(r"[0-9a-f]{16}", media_dir.name)
        assert sorted(c.condition for c in candidates) == sorted([*CONDITIONS, CHECK_CONDITION] * 3)
        assert sorted(p.name for p in media_dir.iterdir()) == sorted(c.media_file for c in candidates)
        for c in candidates:
            assert OPAQUE.match(c.media_file)
            info = probe(media_dir / c.media_file)
            assert (info.video_codec, info.audio_codec) == ("h264", "aac")
            assert info.duration_s == pytest.approx(1.2, abs=0.1)
        assert [s.name for s in stimuli] == ["clip0", "clip1", "clip2"] and all(s.duration_s == pytest.approx(1.2, abs=0.1)
                                                                       for s in stimuli)
        # the stored plan is the design's plan, slot by slot
        spec = DesignSpec.from_dict(study.design)
        assert len(assignments) == 4
        for a, plan in zip(assignments, plans, strict=True):
            expected = [(t.position, t.kind, t.condition_a, t.condition_b) for t in plan_slot(spec, a.slot)]
            assert plan == expected and a.plan == [t.to_dict() for t in plan_slot(spec, a.slot)]
        # the practice trial plays the last clip, which no scored trial uses
        assert spec.n_stimuli == 2 and spec.practice_clip
        assert practice_clips == {stimuli[2].id} and scored_clips == {stimuli[0].id, stimuli[1].id}
    finally:
        db.dispose()


def test_cli_export_and_analyze_after_raters_vote(csv_study, tmp_path, capsys):
    _, url, _ = csv_study
    db = open_database(url)
    try:
        for _ in range(3):
            token = service.join(db)
            service.consent(db, token)
            view = service.current_trial(db, token)
            while view is not None:
                service.record_vote(db, token, view.trial_id, "A", None, 1000, True, True)
                view = service.current_trial(db, token)
    finally:
        db.dispose()
    out, participants = tmp_path / "votes.csv", tmp_path / "participants.csv"
    assert run_cli("study", "export", "--db", url, "--out", str(out), "--participants", str(participants)) == 0
    votes = list(csv.DictReader(out.open()))
    assert len(votes) == 3 * 8 and len(list(csv.DictReader(participants.open()))) == 3
    capsys.readouterr()
    assert run_cli("study", "analyze", "--db", url, "--json", "--bootstrap", "20") == 0
    result = json.loads(capsys.readouterr().out)
    # always "A" fails the check of the slot whose check expects B: that rater is screened out
    assert (result["raters"], result["raters_included"], result["votes"]) == (3, 2, 12)
    assert [r["excluded"] for r in result["screening"]] == [False, True, False]
    assert {(p["first"], p["second"]) for p in result["pairs"]} == {
        ("ground_truth", "vmnet"), ("ground_truth", "random"), ("vmnet", "random")}
    assert result["position"]["first_chosen"] == 12  # everyone always chose A
    assert run_cli("study", "analyze", "--db", url) == 0
    assert "position bias" in capsys.readouterr().out


def test_cli_errors_are_sentences(csv_study, tmp_path):
    folder, url, clips = csv_study
    with pytest.raises(VmnetError, match="does not exist"):
        run_cli("study", "export", "--db", str(tmp_path / "missing.db"), "--out", str(tmp_path / "v.csv"))
    config = tmp_path / "again.toml"
    config.write_text('name = "cli-study"\n', encoding="utf-8")
    with pytest.raises(VmnetError, match="already exists"):
        run_cli("study", "create", "--candidates", str(folder / "candidates.csv"), "--config", str(config),
                "--db", url, "--media-dir", str(tmp_path / "m"), "--quiet")
    bad = tmp_path / "bad.csv"
    bad.write_text("video,condition\nx.mp4,vmnet\n", encoding="utf-8")
    with pytest.raises(VmnetError, match="track"):
        clips_from_csv(bad)


def test_create_refuses_a_clip_missing_a_condition(tmp_path):
    clips = make_clips(tmp_path, n=1, seconds=1.0, conditions=("ground_truth", "vmnet"))
    db = open_database(f"sqlite:///{tmp_path / 's.db'}")
    try:
        with pytest.raises(VmnetError, match="no candidate for random"):
            create_study(db, StudyConfig(name="x"), clips, tmp_path / "media")
        with db.read() as s:
            assert s.scalar(select(func.count(Study.id))) == 0
    finally:
        db.dispose()


def test_plan_command_through_the_vmnet_entry_point():
    proc = subprocess.run([sys.executable, "-m", "vmnet_core.cli.main", "study", "plan", "--rate", "0.6", "--json"],
                          capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)[0]["independent_votes"] == 210


# ------------------------------------------------------------------------------------ bundle route
def _tiny_bundle(folder: Path) -> Path:
    """A real bundle (small untrained model) whose catalog embeddings are set so the ranking is known:
    each clip's own music is its nearest track, ``near<i>`` the next nearest."""
    import torch

    from vmnet_core.bundle.catalog import Catalog, CatalogItem
    from vmnet_core.bundle.files import save_bundle
    from vmnet_core.learn.model import ModelConfig, VMNet
    from vmnet_core.learn.preprocess import PreprocessConfig, Preprocessor

    rng = np.random.default_rng(0)
    pre = Preprocessor.fit(rng.normal(size=(12, 1140)).astype(np.float32), rng.normal(size=(12, 16)).astype(np.float32),
                           config=PreprocessConfig(video_components=8))
    torch.manual_seed(0)
    model = VMNet(ModelConfig(music_dim=pre.music_dim, video_dim=pre.video_dim, music_hidden=(16,),
                              video_hidden=(16,))).eval()
    clips = make_clips(folder, n=4, seconds=1.0, conditions=("own", "near"))
    base = rng.normal(size=(4, 512)).astype(np.float32)
    catalog = Catalog()
    splits = ["test", "test", "test", "train"]
    catalog.add("video", base, [CatalogItem(id=f"v{i}", path=str(c.video), pair_id=f"v{i}", split=splits[i])
                                for i, c in enumerate(clips)])
    near = base + 0.3 * rng.normal(size=base.shape).astype(np.float32)
    catalog.add("music", np.concatenate([base, near]),
                [CatalogItem(id=f"v{i}", title=f"own {i}", path=str(c.tracks["own"].path), pair_id=f"v{i}",
                             split=splits[i]) for i, c in enumerate(clips)]
                + [CatalogItem(id=f"near{i}", title=f"near {i}", path=str(c.tracks["near"].path))
                   for i, c in enumerate(clips)])
    return save_bundle(folder / "bundle", model, pre, {"descriptors": {}}, {}, "# tiny test bundle", catalog=catalog)


def test_bundle_route_picks_ground_truth_model_best_other_and_random(tmp_path):
    bundle = _tiny_bundle(tmp_path)
    config = StudyConfig.from_dict({"name": "b", "seed": 1, "videos": {"count": 2}})
    clips = clips_from_bundle(bundle, config)
    # two scored clips and one more, drawn too, for the practice trial
    assert len(clips) == 3 and {c.name for c in clips} == {"v0", "v1", "v2"}
    assert [c.practice for c in clips] == [False, False, True]
    for clip in clips:
        i = clip.name[1:]
        assert clip.tracks["ground_truth"].track_id == f"v{i}"
        assert clip.tracks["vmnet"].track_id == f"near{i}"  # best track other than the ground truth
        assert clip.tracks["random"].track_id not in {f"v{i}", f"near{i}"}
        assert all(t.path.is_file() for t in clip.tracks.values())
    assert [c.name for c in clips_from_bundle(bundle, config)] == [c.name for c in clips]  # seeded
    with pytest.raises(VmnetError, match="has no source"):
        clips_from_bundle(bundle, StudyConfig.from_dict({"name": "b", "conditions": ["ground_truth", "cca"],
                                                       "videos": {"count": 2}}))
    with pytest.raises(VmnetError, match="only 3"):
        clips_from_bundle(bundle, StudyConfig.from_dict({"name": "b", "videos": {"count": 5}}))
    with pytest.raises(VmnetError, match="one more for the practice trial.*practice = false"):
        clips_from_bundle(bundle, StudyConfig.from_dict({"name": "b", "videos": {"count": 3}}))
    no_practice = clips_from_bundle(bundle, StudyConfig.from_dict({"name": "b", "practice": False,
                                                                   "videos": {"count": 3}}))
    assert len(no_practice) == 3 and not any(c.practice for c in no_practice)


def test_the_practice_clip_is_named_marked_or_the_last_and_never_scored():
    clips = [ClipSource(f"c{i}", Path(f"/x/c{i}.mp4")) for i in range(3)]
    config = StudyConfig.from_dict({"name": "p"})
    assert [(c.name, c.practice) for c in practice_last(config, clips)] == [("c0", False), ("c1", False),
                                                                            ("c2", True)]
    named = StudyConfig.from_dict({"name": "p", "practice_clip": "c0"})
    assert [(c.name, c.practice) for c in practice_last(named, clips)] == [("c1", False), ("c2", False),
                                                                           ("c0", True)]
    marked = [clips[0], ClipSource("c1", Path("/x/c1.mp4"), practice=True), clips[2]]
    assert [c.name for c in practice_last(config, marked)] == ["c0", "c2", "c1"]
    assert [c.name for c in practice_last(StudyConfig.from_dict({"name": "p", "practice": False}), marked)] == [
        "c0", "c2"]
    with pytest.raises(VmnetError, match="practice_clip 'c9' is not one of"):
        practice_last(StudyConfig.from_dict({"name": "p", "practice_clip": "c9"}), clips)
    with pytest.raises(VmnetError, match="clip of its own.*practice = false"):
        practice_last(config, clips[:1])
