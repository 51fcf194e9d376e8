import os
import stat
import time

import pytest

from voicebot.errors import LockedError
from voicebot.storage import TempDir, exclusive_lock, heartbeat_age, prepare_data_dir, write_heartbeat


def test_temp_file_is_unique_and_removed_even_on_error(tmp_path):
    temp = TempDir(tmp_path / "temp")
    temp.prepare()
    with temp.file(".ogg") as a, temp.file(".ogg") as b:
        assert a != b and a.parent == temp.root and a.suffix == ".ogg"
        a.write_bytes(b"x")
        b.write_bytes(b"y")
    with pytest.raises(RuntimeError), temp.file(".ogg") as c:
        c.write_bytes(b"z")
        raise RuntimeError("boom")
    assert list(temp.root.iterdir()) == []


def test_suffix_cannot_steer_the_path(tmp_path):
    temp = TempDir(tmp_path)
    with temp.file("/../../etc/passwd") as path:
        assert path.parent == tmp_path
        assert "/" not in path.name[len("vb-") :]


def test_prepare_removes_leftovers_only(tmp_path):
    (tmp_path / "vb-stale.ogg").write_bytes(b"old")
    (tmp_path / "keep.txt").write_text("not ours")
    assert TempDir(tmp_path).prepare() == 1
    assert [p.name for p in tmp_path.iterdir()] == ["keep.txt"]


def test_data_dir_and_session_are_private(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    session = data / "voicebot.session"
    session.write_bytes(b"")
    os.chmod(session, 0o644)
    prepare_data_dir(data)
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    assert stat.S_IMODE(session.stat().st_mode) == 0o600


def test_second_holder_of_the_lock_is_refused(tmp_path):
    with exclusive_lock(tmp_path), pytest.raises(LockedError), exclusive_lock(tmp_path):
        pass
    with exclusive_lock(tmp_path):  # released: free again
        pass


def test_heartbeat_age(tmp_path):
    assert heartbeat_age(tmp_path) is None
    write_heartbeat(tmp_path)
    assert 0 <= heartbeat_age(tmp_path) < 5
    (tmp_path / "heartbeat").write_text(str(time.time() - 300))
    assert heartbeat_age(tmp_path) > 250


def test_unusable_temp_dir_is_one_clear_error(tmp_path):
    from voicebot.errors import StorageError

    blocker = tmp_path / "temp"
    blocker.write_text("a file where the directory should be")
    with pytest.raises(StorageError, match="TEMP_DIR .*temp is not writable"):
        TempDir(blocker).prepare()


def test_a_data_dir_owned_by_someone_else_is_one_clear_error(tmp_path, monkeypatch):
    """Under Docker a bind-mounted /data owned by root: one line naming DATA_DIR, no traceback."""
    import os

    from voicebot.errors import StorageError
    from voicebot.storage import prepare_data_dir

    data = tmp_path / "data"
    data.mkdir()

    def refuse(path, mode):
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "chmod", refuse)
    with pytest.raises(StorageError, match="DATA_DIR .*data is not usable by uid"):
        prepare_data_dir(data)
