"""What ``app.py`` mounts: the rater flow (``/study``), the admin (``/admin``) and the default study.

``mount_study`` opens the app's one study ``Database`` (migrating it) and hands it to both pages;
``prepare_default_study``, when the database holds no study yet, creates a small one from the
served bundle so that ``python app.py`` shows a working study out of the box.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from study.db import SQLITE_BUSY_TIMEOUT_MS, Database
from study.service import list_studies, media_dirs
from study.ui_admin import build_admin_page
from study.ui_rater import build_rater_page
from vmnet_core.errors import VmnetError

__all__ = ["DEFAULT_STUDY_NAME", "MountedStudy", "build_admin_page", "build_rater_page", "default_study_config",
           "mount_study", "prepare_default_study"]

DEFAULT_STUDY_NAME = "default-study"
DEFAULT_CLIPS = 3


def default_study_config(n_clips: int = DEFAULT_CLIPS, practice: bool = True):
    """The built-in study: ``n_clips`` test-split clips, ground truth vs VM-NET vs a random track,
    every (clip, pair) once, one noise attention check, one swapped repeat, one practice trial (on
    one more clip of its own, when ``practice``)."""
    from study.config import StudyConfig

    return StudyConfig.from_dict({
        "name": DEFAULT_STUDY_NAME, "conditions": ["ground_truth", "vmnet", "random"], "seed": 0,
        "swapped_repeats": 1, "practice": practice, "attention": {"count": 1, "kind": "noise"},
        "videos": {"source": "split", "split": "test", "count": n_clips},
    })


def _test_split_size(bundle_dir: Path) -> int:
    from vmnet_core.bundle.files import load_bundle

    return sum(1 for v in load_bundle(bundle_dir).catalog.items("video") if v.split == "test" and v.path)


def prepare_default_study(db: Database, bundle_dir: str | Path, work_dir: str | Path) -> list[Path]:
    """When the (migrated) study database ``db`` holds no study, create the default one from
    ``bundle_dir`` with its premuxed clips under ``work_dir/media``. Returns every study's media
    folder (for the server's ``allowed_paths``).

    A bundle that cannot give a study (no test clips, no music) leaves the database empty with a
    printed note: the rater page then says that no study is open.
    """
    from study.create import clips_from_bundle, create_study

    if not list_studies(db):
        size = _test_split_size(Path(bundle_dir))
        practice = size >= 2  # the practice trial takes a clip of its own
        n_clips = min(DEFAULT_CLIPS, size - int(practice))
        try:
            if n_clips < 1:
                raise VmnetError(f"The bundle {bundle_dir} has no test-split clips with a file.")
            config = default_study_config(n_clips, practice)
            create_study(db, config, clips_from_bundle(bundle_dir, config), Path(work_dir) / "media")
            print(f"vmnet: created the default study ({n_clips} clips) in the study database", flush=True)
        except VmnetError as exc:
            if not list_studies(db):  # another process may have created it meanwhile
                print(f"vmnet: no default study: {exc}", file=sys.stderr, flush=True)
    return media_dirs(db)


@dataclass(frozen=True)
class MountedStudy:
    """What :func:`mount_study` set up: the app's one study database and the media folders served."""

    db: Database  # shared by the rater and the admin pages: one engine, one SQLite writer queue
    media_dirs: list[Path]


def mount_study(server, db_url: str, bundle_dir: str | Path, work_dir: str | Path, admin_password: str,
                max_file_size: str | int | None = None, busy_timeout_ms: int | None = None) -> MountedStudy:
    """Open the study database once (migrating it), prepare it (see :func:`prepare_default_study`)
    and mount the rater flow at ``/study`` and the admin at ``/admin`` (login ``admin`` /
    ``admin_password``), both over that one :class:`~study.db.Database`, on the FastAPI
    ``server``; mount these before anything at ``/``. The database lives as long as the server.

    ``busy_timeout_ms``: on SQLite, how long a request waits for another writer's lock before it
    fails (the rater then sees "saving failed, try again"); None keeps ``study.db``'s 30 s.
    """
    import gradio as gr

    timeout_ms = SQLITE_BUSY_TIMEOUT_MS if busy_timeout_ms is None else int(busy_timeout_ms)
    if timeout_ms < 0:
        raise VmnetError(f"The database busy timeout must be 0 ms or more, not {timeout_ms}.")
    db = Database(db_url, busy_timeout_ms=timeout_ms)  # runs the migrations
    dirs = prepare_default_study(db, bundle_dir, work_dir)
    gr.mount_gradio_app(server, build_rater_page(db), path="/study",
                        allowed_paths=[str(d) for d in dirs], max_file_size=max_file_size, footer_links=[])
    gr.mount_gradio_app(server, build_admin_page(db), path="/admin", auth=("admin", admin_password),
                        max_file_size=max_file_size)
    return MountedStudy(db, dirs)
