"""Tests of the library saved by chapter 6, Builders' Guide (generated ``dlbook``).

Covers the data-hub additions of section 6.8: get_data_dir (cache folder and
DLBOOK_DATA), the stand-in registry (register_stand_in, download_or_stand_in: real file
first, verified mirror copies, a labelled stand-in otherwise, errors for names without
one). Nothing here touches the network:
DLBOOK_OFFLINE=1 is set and urlopen is replaced.
"""

from __future__ import annotations

import hashlib
import urllib.request
from pathlib import Path

import pytest

import dlbook

REPO = Path(__file__).resolve().parents[1]

if not hasattr(dlbook, "download_or_stand_in"):
    pytest.fail("dlbook has no chapter 6 names yet: run `python -m tools lib` with "
                "chapters/06-builders-guide in _toc.yml", pytrace=False)

NAME = "test-builders-file"


@pytest.fixture(autouse=True)
def quiet_environment(monkeypatch, tmp_path):
    """Full profile, no mirror, a private cache, no network, and a clean hub entry."""
    monkeypatch.setenv("DLBOOK_OFFLINE", "1")
    monkeypatch.setenv("DLBOOK_DATA", str(tmp_path / "cache"))
    monkeypatch.delenv("DLBOOK_DATA_MIRROR", raising=False)

    def no_network(*args, **kwargs):
        raise AssertionError("a test tried to use the network")

    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    yield
    dlbook.DATA_HUB.pop(NAME, None)
    dlbook.STAND_INS.pop(NAME, None)


def publish(tmp_path, monkeypatch, content: bytes, registered_hash: str | None = None):
    """Put a file in a mirror folder and register it in DATA_HUB under NAME."""
    mirror = tmp_path / "mirror"
    mirror.mkdir(exist_ok=True)
    (mirror / "payload.bin").write_bytes(content)
    monkeypatch.setenv("DLBOOK_DATA_MIRROR", str(mirror))
    digest = registered_hash or hashlib.sha1(content).hexdigest()
    dlbook.DATA_HUB[NAME] = ("https://example.org/dlbook/payload.bin", digest)


def register_text_stand_in(calls: list):
    @dlbook.register_stand_in(NAME, "a tiny text stand-in")
    def make(folder):
        calls.append(Path(folder))
        path = Path(folder) / "payload.bin"
        path.write_bytes(b"stand-in")
        return path

    return make


# --- get_data_dir -----------------------------------------------------------------------

def test_get_data_dir_follows_dlbook_data_and_creates_subfolders(tmp_path):
    root = dlbook.get_data_dir()
    assert root == tmp_path / "cache" and root.is_dir()
    sub = dlbook.get_data_dir("some-dataset")
    assert sub == tmp_path / "cache" / "some-dataset" and sub.is_dir()


def test_get_data_dir_uses_folder_argument_without_dlbook_data(tmp_path, monkeypatch):
    monkeypatch.delenv("DLBOOK_DATA")
    sub = dlbook.get_data_dir("x", folder=tmp_path / "elsewhere")
    assert sub == tmp_path / "elsewhere" / "x" and sub.is_dir()


# --- stand-ins --------------------------------------------------------------------------

def test_register_stand_in_returns_the_function_and_records_it():
    make = register_text_stand_in([])
    assert dlbook.STAND_INS[NAME] == (make, "a tiny text stand-in")


def test_real_file_is_preferred_to_the_stand_in(tmp_path, monkeypatch, capsys):
    publish(tmp_path, monkeypatch, b"the real thing")
    calls = []
    register_text_stand_in(calls)
    path = Path(dlbook.download_or_stand_in(NAME))
    assert path.read_bytes() == b"the real thing"
    assert path.parent == tmp_path / "cache"
    assert calls == [] and "stand-in" not in capsys.readouterr().out


def test_stand_in_is_built_and_announced_when_nothing_is_reachable(tmp_path, capsys):
    dlbook.DATA_HUB[NAME] = ("https://example.org/dlbook/payload.bin", "0" * 40)
    calls = []
    register_text_stand_in(calls)
    path = Path(dlbook.download_or_stand_in(NAME))
    assert path.read_bytes() == b"stand-in"
    assert calls == [tmp_path / "cache" / f"{NAME}-stand-in"]
    out = capsys.readouterr().out
    assert "using a stand-in: a tiny text stand-in" in out
    assert out.count("\n") == 1  # one line, no noise


def test_tampered_mirror_copy_stops_with_both_checksums_and_no_stand_in(tmp_path,
                                                                        monkeypatch):
    """A file that fails verification is an error, not an absence: no stand-in, no copy
    kept, and the message names the file, the expected and the actual checksum."""
    publish(tmp_path, monkeypatch, b"tampered", registered_hash="1" * 40)
    calls = []
    register_text_stand_in(calls)
    with pytest.raises(dlbook.ChecksumMismatch) as err:
        dlbook.download_or_stand_in(NAME)
    actual = hashlib.sha1(b"tampered").hexdigest()
    assert str(err.value) == (f"checksum mismatch for payload.bin: expected {'1' * 40}, "
                              f"got {actual}")
    assert calls == [] and not (tmp_path / "cache" / "payload.bin").exists()


def test_name_without_stand_in_still_raises_data_unavailable():
    dlbook.DATA_HUB[NAME] = ("https://example.org/dlbook/payload.bin", "0" * 40)
    with pytest.raises(dlbook.DataUnavailable):
        dlbook.download_or_stand_in(NAME)


