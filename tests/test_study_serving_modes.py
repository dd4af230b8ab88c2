"""``python app.py`` and a live study: the demo is not served next to an open study unless the
operator says so, and ``--study-only`` serves the study alone (no demo API to de-blind a trial)."""

from __future__ import annotations

import subprocess
import sys

import httpx
from gradio_client import Client

from study.db import Database
from vmnet_testkit.processes import free_port
from vmnet_testkit.study_helpers import new_study, premux_clips
from vmnet_testkit.study_server import ADMIN_PASSWORD, ROOT, app_subprocess


def _database_with_open_study(tmp_path) -> str:
    url = f"sqlite:///{tmp_path / 'study.db'}"
    db = Database(url)
    new_study(db, premux_clips(tmp_path / "clips", n=1, check_kind=None), "live-crowd-study",
              attention={"count": 0}, swapped_repeats=0)
    db.dispose()
    return url


def test_the_demo_is_refused_beside_an_open_study_and_study_only_serves_the_study_alone(tmp_path):
    url = _database_with_open_study(tmp_path)
    env = {"VMNET_CACHE": str(tmp_path / "cache"), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path),
           "PYTHONPATH": str(ROOT)}
    refused = subprocess.run([sys.executable, str(ROOT / "app.py"), "--bundle", str(tmp_path / "no-bundle"),
                              "--db", url, "--port", str(free_port()), "--admin-password", ADMIN_PASSWORD],
                             cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert refused.returncode == 2
    assert "open study (live-crowd-study)" in refused.stderr and "--study-only" in refused.stderr
    assert "--allow-demo-with-open-study" in refused.stderr and "Traceback" not in refused.stderr

    with app_subprocess(tmp_path / "no-bundle", url, tmp_path / "cache", extra_args=("--study-only",)) as srv:
        http = httpx.Client(timeout=60)
        root = http.get(srv.url + "/", follow_redirects=False)
        assert root.status_code in (302, 307) and root.headers["location"] == "/study/"
        assert http.get(srv.url + "/config").status_code == 404  # no demo page ...
        assert http.get(srv.url + "/gradio_api/info").status_code == 404  # ... and no demo API
        assert http.get(srv.url + "/admin-music/").status_code == 404
        client = Client(srv.study, verbose=False, download_files=False)
        token = client.predict("", {}, "", api_name="/consent")
        assert client.predict(token, api_name="/trial")["number"] == 1
