"""The registry and the inputs around it: broken records, locks, a registry that cannot be
written, the profile guard of `make test`, paths in the environment, weights fingerprints,
short source names and a download without network (issue 15, sections 1, 3, 4 and 5).
None of these tests needs TensorFlow or CIFAR-10, except the one through tfds."""

import hashlib
import json
import os
import re
import socket
import struct
import subprocess
import sys
import time
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest

from helpers import results, sources
from helpers.profiles import ProfileNotAllowedError, get_profile

REPO = Path(__file__).resolve().parent.parent


def _write(profile="smoke", name="baseline", key="k0", seed=0, summary="50% of pool",
           kind="experiment", arrays=True):
    data = {"name": name, "key": key, "profile": profile, "seed": seed, "kind": kind,
            "summary": summary, "config": {"seed": seed},
            "metrics": {"validation": {"accuracy": 0.6, "macro_f1": 0.5},
                        "test": {"accuracy": 0.5, "macro_f1": 0.4}},
            "provenance": {"profile": profile, "data_source": "d", "weights_source": "w"}}
    return results.write(results.record_dir(profile, name, key), data,
                         {"test_probs": np.eye(10, dtype=np.float16)} if arrays else None)


def _cli(*args, env=None):
    return subprocess.run([sys.executable, "-m", "helpers.results", *args], cwd=REPO,
                          capture_output=True, text=True, env={**os.environ, **(env or {})})


def _no_warning(fn):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        value = fn()
    assert not [w for w in caught if issubclass(w.category, results.BrokenRecordWarning)]
    return value


# ---------------------------------------------------------------- section 4: broken records

def _json_file(text):
    return lambda folder: (folder / results.RECORD_FILE).write_bytes(text)


def _without(field):
    def damage(folder):
        data = json.loads((folder / results.RECORD_FILE).read_text())
        del data[field]
        (folder / results.RECORD_FILE).write_text(json.dumps(data))
    return damage


def _record_json_is_a_folder(folder):
    (folder / results.RECORD_FILE).unlink()
    (folder / results.RECORD_FILE).mkdir()


def _truncate_arrays(folder):
    file = folder / results.ARRAYS_FILE
    file.write_bytes(file.read_bytes()[: file.stat().st_size // 2])


def _flip_arrays_byte(folder):
    """One flipped byte inside the first member's data; the zip directory stays intact."""
    file = folder / results.ARRAYS_FILE
    raw = bytearray(file.read_bytes())
    with zipfile.ZipFile(file) as archive:
        info = archive.infolist()[0]
    name_len, extra_len = struct.unpack("<HH", raw[info.header_offset + 26:info.header_offset + 30])
    start = info.header_offset + 30 + name_len + extra_len
    raw[start + info.compress_size // 2] ^= 0xFF
    file.write_bytes(bytes(raw))


DAMAGES = {
    "null": _json_file(b"null"),
    "list": _json_file(b"[]"),
    "binary": _json_file(bytes(range(256)) * 4),
    "not json": _json_file(b'{"status": "complete", "name": '),
    "a folder": _record_json_is_a_folder,
    "no key": _without("key"),
    "no provenance": _without("provenance"),
    "not complete": _without("status"),
    "arrays missing": lambda folder: (folder / results.ARRAYS_FILE).unlink(),
    "arrays truncated": _truncate_arrays,
    "arrays garbage": lambda folder: (folder / results.ARRAYS_FILE).write_bytes(b"PK\x03\x04junk"),
    "arrays bad crc": _flip_arrays_byte,
}


@pytest.mark.parametrize("damage", DAMAGES, ids=list(DAMAGES))
def test_a_broken_record_is_not_complete(results_dir, damage):
    good = _write(key="good")
    broken = _write(name="label_noise", key="bad")
    DAMAGES[damage](broken.path)
    with pytest.warns(results.BrokenRecordWarning, match=re.escape(str(broken.path))):
        assert results.load(broken.path) is None
    _no_warning(lambda: results.load(broken.path))  # once per path
    assert [r.key for r in _no_warning(lambda: list(results.iter_records("smoke")))] == ["good"]
    assert results.load(good.path).key == "good"
    # asking for it again writes over the broken folder
    assert _write(name="label_noise", key="bad").path == broken.path
    assert results.load(broken.path).key == "bad"


def test_analysis_records_need_no_arrays_but_arrays_that_exist_must_load(results_dir):
    record = _write(name="test_set_audit", kind="analysis", arrays=False)
    assert results.load(record.path) is not None
    (record.path / results.ARRAYS_FILE).write_bytes(b"half")
    with pytest.warns(results.BrokenRecordWarning, match="unreadable"):
        assert results.load(record.path) is None


def test_write_replaces_a_record_folder_that_is_a_file(results_dir):
    path = results.record_dir("smoke", "baseline", "file")
    path.parent.mkdir(parents=True)
    path.write_text("oops")
    with pytest.warns(results.BrokenRecordWarning, match="not a folder"):
        assert results.load(path) is None
    assert _write(key="file").path == path and results.load(path) is not None


def test_list_names_every_broken_record_and_exits_1(results_dir):
    _write(key="good")
    paths = []
    for n, damage in enumerate(DAMAGES.values()):
        record = _write(name="more_data", key=f"bad{n:02d}")
        damage(record.path)
        paths.append(record.path)
    (results_dir / "smoke" / "stray.txt").write_text("x")
    paths.append(results_dir / "smoke" / "stray.txt")
    for args in (["list"], ["list", "--profile", "smoke"], ["list", "--json"]):
        done = _cli(*args)
        assert done.returncode == 1, done.stderr
        assert "good" in done.stdout and "bad" not in done.stdout
        summary = done.stderr.strip().splitlines()[-1]
        assert summary.startswith(f"{len(paths)} broken records")
        for path in paths:
            assert str(path) in summary
    clean = _cli("list", env={"DCAI_RESULTS_DIR": str(results_dir.parent / "empty")})
    assert clean.returncode == 0 and clean.stdout == ""


def test_list_on_a_registry_that_is_a_file(tmp_path):
    file = tmp_path / "registry"
    file.write_text("not a folder")
    done = _cli("list", env={"DCAI_RESULTS_DIR": str(file)})
    assert done.returncode != 0
    assert "not a folder" in done.stderr and "DCAI_RESULTS_DIR" in done.stderr


def test_list_order_and_wording(results_dir):
    for profile, name, seed, summary in [
        ("quick", "more_data", 0, "75% of pool"), ("quick", "baseline", 1, "50% of pool"),
        ("smoke", "zeta", 0, "z"), ("quick", "cv_fold", 0, "fold 1"),
        ("smoke", "label_noise", 0, "noise 5%"), ("quick", "more_data", 0, "25% of pool"),
        ("quick", "baseline", 0, "50% of pool"), ("smoke", "augmentation", 0, "augmented"),
        ("quick", "more_cats_and_dogs", 0, "cats"), ("smoke", "baseline", 2, "50% of pool"),
        ("quick", "label_noise", 0, "noise 1%"), ("smoke", "cl_pruned", 0, "pruned"),
    ]:
        key = hashlib.sha256(f"{profile}{name}{seed}{summary}".encode()).hexdigest()[:12]
        _write(profile=profile, name=name, key=key, seed=seed, summary=summary)
    done = _cli("list", "--json")
    assert done.returncode == 0, done.stderr
    order = [(line["profile"], line["name"], line["config"], line["seed"])
             for line in map(json.loads, done.stdout.splitlines())]
    assert order == [
        ("smoke", "baseline", "50% of pool", 2), ("smoke", "label_noise", "noise 5%", 0),
        ("smoke", "augmentation", "augmented", 0), ("smoke", "cl_pruned", "pruned", 0),
        ("smoke", "zeta", "z", 0),
        ("quick", "baseline", "50% of pool", 0), ("quick", "baseline", "50% of pool", 1),
        ("quick", "label_noise", "noise 1%", 0), ("quick", "more_cats_and_dogs", "cats", 0),
        ("quick", "more_data", "25% of pool", 0), ("quick", "more_data", "75% of pool", 0),
        ("quick", "cv_fold", "fold 1", 0),
    ]
    text = _cli("list", "--profile", "smoke").stdout
    assert "validation: accuracy 0.600, macro-F1 0.500; test: accuracy 0.500" in text
    assert "vali acc" not in text


# ---------------------------------------------------------------- section 1: the profile guard

def test_only_profile_guard(results_dir, monkeypatch):
    smoke = _write(profile="smoke", key="s")
    full = _write(profile="full", key="f")
    odd = results.write(results_dir / "elsewhere" / "baseline-x",  # a full record, odd folder
                        {**full.data, "key": "x"}, {"a": np.zeros(1)})
    monkeypatch.setenv("DCAI_ONLY_PROFILE", "smoke")
    assert get_profile("smoke").name == "smoke"
    for name in ("full", "quick"):
        with pytest.raises(ProfileNotAllowedError, match=f"DCAI_ONLY_PROFILE=smoke.*'{name}'|"
                                                         f"'{name}'.*DCAI_ONLY_PROFILE=smoke"):
            get_profile(name)
    monkeypatch.setenv("DCAI_PROFILE", "full")
    with pytest.raises(ProfileNotAllowedError, match="DCAI_PROFILE"):
        get_profile()
    with pytest.raises(ProfileNotAllowedError, match=re.escape(str(full.path))):
        results.load(full.path)
    with pytest.raises(ProfileNotAllowedError):
        results.load(results.record_dir("full", "baseline", "missing"))
    with pytest.raises(ProfileNotAllowedError):
        results.load(odd.path)
    with pytest.raises(ProfileNotAllowedError):
        list(results.iter_records("full"))
    with pytest.raises(ProfileNotAllowedError):
        list(results.iter_records())
    assert [r.key for r in results.iter_records("smoke")] == ["s"]
    assert results.load(smoke.path).key == "s"
    monkeypatch.delenv("DCAI_ONLY_PROFILE")
    assert results.load(full.path).key == "f" and get_profile("full").name == "full"


# ---------------------------------------------------------------- section 3: one run, one lock

HOLDER = """
import sys, time
from pathlib import Path
from helpers import results
with results.run_lock(Path(sys.argv[1])):
    print("held", flush=True)
    time.sleep(float(sys.argv[2]))
    Path(sys.argv[1] + ".released").touch()  # the last thing before letting go
"""


def _hold(record_dir, seconds):
    child = subprocess.Popen([sys.executable, "-c", HOLDER, str(record_dir), str(seconds)],
                             cwd=REPO, stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == "held"
    return child


def _stop(child):
    child.kill()
    child.wait()
    child.stdout.close()


def test_run_lock_waits_for_the_other_process(results_dir, capsys):
    record_dir = results.record_dir("smoke", "baseline", "abc")
    lock = results.lock_file(record_dir)
    assert lock == results_dir / "smoke" / ".locks" / "baseline-abc.lock"
    child = _hold(record_dir, 3)
    try:
        start = time.monotonic()
        with pytest.raises(TimeoutError, match=f"waiting for process {child.pid} on "
                                               f"{re.escape(socket.gethostname())}, which is "
                                               "training baseline-abc"):
            with results.run_lock(record_dir, timeout=0.5):
                pytest.fail("got a lock another process holds")
        assert time.monotonic() - start < 2.5
        with results.run_lock(record_dir) as path:  # blocks until the child lets go
            assert Path(f"{record_dir}.released").exists(), "entered while another held it"
            holder = json.loads(path.read_text())
            assert holder["pid"] == os.getpid() and holder["name"] == "baseline-abc"
            with results.run_lock(record_dir):  # re-entrant in one process
                pass
    finally:
        _stop(child)
    err = capsys.readouterr().err
    assert err.count(f"waiting for process {child.pid} on {socket.gethostname()}, which is "
                     "training baseline-abc") == 2  # once per attempt
    # another run is not blocked, and a killed holder leaves no stale lock
    other = _hold(results.record_dir("smoke", "baseline", "other"), 60)
    with results.run_lock(record_dir, timeout=1):
        pass
    _stop(other)
    with results.run_lock(results.record_dir("smoke", "baseline", "other"), timeout=1):
        pass


# ---------------------------------------------------------------- section 5: inputs at the door

def test_ensure_writable(tmp_path, monkeypatch):
    monkeypatch.setenv("DCAI_RESULTS_DIR", str(tmp_path / "new" / "registry"))
    folder = results.ensure_writable("smoke")
    assert folder == tmp_path / "new" / "registry" / "smoke" and folder.is_dir()
    assert list(folder.iterdir()) == []  # the probe is gone
    file = tmp_path / "a_file"
    file.write_text("x")
    monkeypatch.setenv("DCAI_RESULTS_DIR", str(file))
    with pytest.raises(results.RegistryError, match="DCAI_RESULTS_DIR"):
        results.ensure_writable("smoke")
    with pytest.raises(ValueError, match="unknown profile"):
        results.ensure_writable("huge")


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores file permissions")
def test_ensure_writable_read_only(tmp_path, monkeypatch):
    registry = tmp_path / "registry"
    registry.mkdir()
    registry.chmod(0o555)
    monkeypatch.setenv("DCAI_RESULTS_DIR", str(registry))
    try:
        with pytest.raises(results.RegistryError, match="writable.*DCAI_RESULTS_DIR"):
            results.ensure_writable("smoke")
    finally:
        registry.chmod(0o755)


def test_relative_paths_in_the_environment_are_made_absolute(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    env = {**os.environ, "HOME": str(home), "PYTHONPATH": str(REPO),
           "DCAI_RESULTS_DIR": "relreg", "DCAI_WEIGHTS": "~/w.weights.h5",
           "TFDS_DATA_DIR": "../data/tfds", "DCAI_SHARED": "none"}
    script = ("import json, os, subprocess, sys, helpers\n"
              "names = ['DCAI_RESULTS_DIR', 'DCAI_WEIGHTS', 'TFDS_DATA_DIR', 'DCAI_SHARED']\n"
              "child = subprocess.run([sys.executable, '-c', 'import os; "
              "print(os.environ[\"DCAI_RESULTS_DIR\"])'], cwd='/', capture_output=True, "
              "text=True).stdout.strip()\n"
              "print(json.dumps({**{n: os.environ.get(n) for n in names}, 'child': child}))\n")
    out = json.loads(subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env,
                                    capture_output=True, text=True, check=True).stdout)
    assert out == {"DCAI_RESULTS_DIR": str(tmp_path / "relreg"),
                   "DCAI_WEIGHTS": str(home / "w.weights.h5"),
                   "TFDS_DATA_DIR": str(tmp_path.parent / "data" / "tfds"),
                   "DCAI_SHARED": "none", "child": str(tmp_path / "relreg")}
    env.update(DCAI_WEIGHTS="imagenet", DCAI_SHARED="", TFDS_DATA_DIR="/abs/tfds",
               DCAI_RESULTS_DIR="gs://bucket/x")
    out = json.loads(subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env,
                                    capture_output=True, text=True, check=True).stdout)
    assert (out["DCAI_WEIGHTS"], out["DCAI_SHARED"], out["TFDS_DATA_DIR"],
            out["DCAI_RESULTS_DIR"]) == ("imagenet", "", "/abs/tfds", "gs://bucket/x")


def test_weights_fingerprint(tmp_path, monkeypatch):
    monkeypatch.setenv("DCAI_WEIGHTS", "imagenet")
    assert sources.weights_fingerprint() == "imagenet"
    file = tmp_path / "a.weights.h5"
    file.write_bytes(b"weights v1")
    monkeypatch.setenv("DCAI_WEIGHTS", str(file))
    expected = "sha256:" + hashlib.sha256(b"weights v1").hexdigest()[:16]
    assert sources.weights_fingerprint() == expected == sources.weights_fingerprint(str(file))
    copy = tmp_path / "renamed.weights.h5"
    copy.write_bytes(b"weights v1")
    assert sources.weights_fingerprint(str(copy)) == expected  # by content, not by name
    file.write_bytes(b"weights v2, longer")  # same path, new content: not served from cache
    assert sources.weights_fingerprint() == (
        "sha256:" + hashlib.sha256(b"weights v2, longer").hexdigest()[:16])
    monkeypatch.setenv("DCAI_WEIGHTS", str(tmp_path / "missing.weights.h5"))
    with pytest.raises(FileNotFoundError, match="DCAI_WEIGHTS"):
        sources.weights_fingerprint()


def test_short_source_names_have_no_paths(tmp_path, monkeypatch):
    monkeypatch.delenv("TFDS_DATA_DIR", raising=False)
    monkeypatch.delenv("DCAI_WEIGHTS", raising=False)
    monkeypatch.setenv("DCAI_SHARED", "none")
    assert sources.data_source_name() == "tfds download of CIFAR-10"
    assert sources.weights_source_name() == "official Keras ImageNet weights"
    shared = tmp_path / "shared"
    (shared / "tensorflow_datasets").mkdir(parents=True)
    (shared / sources.SHARED_WEIGHTS_FILE).parent.mkdir(parents=True)
    (shared / sources.SHARED_WEIGHTS_FILE).write_bytes(b"")
    monkeypatch.setenv("DCAI_SHARED", str(shared))
    assert sources.data_source_name() == "JPEG copy of CIFAR-10"
    assert sources.weights_source_name() == "approximate ImageNet weights"
    assert str(shared) in sources.data_source() and str(shared) in sources.weights_source()
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path / "tfds"))
    monkeypatch.setenv("DCAI_WEIGHTS", str(tmp_path / "mine.weights.h5"))
    assert sources.data_source_name() == "CIFAR-10 from a local tfds folder"
    assert sources.weights_source_name() == "weights file mine.weights.h5"
    assert sources.data_source() == f"tfds cifar10 from {tmp_path / 'tfds'}"  # records: unchanged


def _no_network(monkeypatch):
    calls = []

    def unreachable(address, timeout=None, *args, **kwargs):
        calls.append((address, timeout))
        raise OSError(101, "Network is unreachable")

    monkeypatch.setattr(socket, "create_connection", unreachable)
    for name in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    return calls


def test_no_network_message(monkeypatch):
    from helpers import data

    calls = _no_network(monkeypatch)
    monkeypatch.delenv("DCAI_OFFLINE", raising=False)
    with pytest.raises(data.DatasetUnavailableError) as caught:
        data.check_download_reachable()
    assert calls == [(("www.cs.toronto.edu", 443), data.NETWORK_CHECK_TIMEOUT_S)]
    message = str(caught.value)
    assert "no network" in message and "TFDS_DATA_DIR" in message and "DCAI_SHARED" in message
    assert "DCAI_OFFLINE" not in message
    monkeypatch.setenv("DCAI_OFFLINE", "1")
    with pytest.raises(data.DatasetUnavailableError, match="unset DCAI_OFFLINE"):
        data.check_download_reachable()


def test_download_without_network_fails_in_seconds(tmp_path, monkeypatch):
    tfds = pytest.importorskip("tensorflow_datasets")
    from helpers import data

    calls = _no_network(monkeypatch)
    monkeypatch.delenv("DCAI_OFFLINE", raising=False)
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path / "empty"))
    monkeypatch.setattr(tfds.core.DatasetBuilder, "download_and_prepare",
                        lambda *a, **k: pytest.fail("tried to download without network"))
    start = time.monotonic()
    with pytest.raises(data.DatasetUnavailableError) as caught:
        data.load_split.__wrapped__("test")
    assert time.monotonic() - start < 30
    assert calls and calls[0][0] == ("www.cs.toronto.edu", 443)
    message = str(caught.value)
    assert str(tmp_path / "empty") in message and "TFDS_DATA_DIR" in message
    assert "DCAI_OFFLINE" not in message
