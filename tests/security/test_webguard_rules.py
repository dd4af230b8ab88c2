"""The web guard's rules on their own (no server): the login throttle's waits and the upload
janitor's age and size bounds. The launched-server attacks are in test_attacks.py."""

from __future__ import annotations

import os
import time

from webguard import LoginThrottle, UploadJanitor, too_many_tries


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_client_gets_free_tries_then_a_doubling_wait():
    clock = Clock()
    throttle = LoginThrottle(free_tries=3, base_s=2.0, max_s=30.0, clock=clock)
    for _ in range(3):
        assert throttle.wait_s("a") == 0
        throttle.failed("a")
    assert throttle.wait_s("a") == 2.0
    throttle.failed("a")
    assert throttle.wait_s("a") == 4.0
    assert throttle.wait_s("b") == 0  # another client is not locked by a's failures
    for _ in range(10):
        throttle.failed("a")
    assert throttle.wait_s("a") == 30.0  # capped
    clock.now += 30.5
    assert throttle.wait_s("a") == 0


def test_many_clients_together_lock_everyone_for_the_window():
    clock = Clock()
    throttle = LoginThrottle(free_tries=100, global_tries=10, window_s=60.0, clock=clock)
    for i in range(10):
        throttle.failed(f"10.0.0.{i}")  # each client alone stays under its own limit
    assert throttle.wait_s("192.168.1.1") == 60.0
    clock.now += 61
    assert throttle.wait_s("192.168.1.1") == 0


def test_success_clears_a_clients_failures():
    clock = Clock()
    throttle = LoginThrottle(free_tries=1, clock=clock)
    throttle.failed("a")
    assert throttle.wait_s("a") > 0
    throttle.succeeded("a")
    assert throttle.wait_s("a") == 0


def test_the_message_says_how_long_to_wait():
    assert too_many_tries(3.2) == "Too many wrong passwords; wait 4 s before trying again."


def _file(path, size: int, age_s: float):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x" * size)
    then = time.time() - age_s
    os.utime(path, (then, then))
    return path


def test_janitor_removes_old_files_and_keeps_fresh_ones(tmp_path):
    old = _file(tmp_path / "aaa" / "old.mp4", 10, age_s=120)
    fresh = _file(tmp_path / "bbb" / "fresh.mp4", 10, age_s=1)
    forgotten = []
    removed = UploadJanitor(tmp_path, max_age_s=60, max_bytes=10**9, forget=forgotten.append).sweep()
    assert removed == {str(old)} and forgotten == [{str(old)}]
    assert not old.exists() and fresh.exists()


def test_janitor_keeps_the_folder_under_its_size_bound_oldest_first(tmp_path):
    files = [_file(tmp_path / f"d{i}" / "upload.bin", 1000, age_s=50 - i) for i in range(10)]  # d0 oldest
    UploadJanitor(tmp_path, max_age_s=3600, max_bytes=3500).sweep()
    assert [f.exists() for f in files] == [False] * 7 + [True] * 3


def test_janitor_keeps_what_the_pages_reference_from_their_start(tmp_path):
    figure = _file(tmp_path / "fig" / "recall.png", 10, age_s=10_000)
    UploadJanitor(tmp_path, max_age_s=60, max_bytes=0, keep=[str(figure)]).sweep()
    assert figure.exists()
