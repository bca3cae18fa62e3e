"""The experiment registry on disk. Never imports TensorFlow, so listing is instant.

Layout: ``results/<profile>/<name>-<key>/`` holds ``record.json`` (config, history, metrics,
provenance, and whatever analyses add) and ``arrays.npz`` (compact predicted probabilities
and ids). A folder is written under a temporary name and renamed into place only when
complete, so a killed run never leaves anything that counts as a result.

A record is *complete* only when both parts load: ``record.json`` is a JSON object with
``status: complete``, ``name``, ``key``, ``profile`` and ``provenance``, and ``arrays.npz``
(required for training runs, optional for analyses) opens with ``np.load`` and passes its zip
CRC check. Anything else in a profile's folder is *broken*: :func:`load` returns None for it
(so asking for the experiment retrains it) and warns once naming the path, :func:`iter_records`
skips it, and ``list`` names it and exits 1.

``results/<profile>/.partial/`` holds interrupted runs and ``results/<profile>/.locks/`` the
per-run lock files of :func:`run_lock`; neither is committed.

When ``$DCAI_ONLY_PROFILE`` is set (``make test`` sets it to ``smoke``), reading a record or a
folder of another profile raises :class:`helpers.profiles.ProfileNotAllowedError`.

CLI: ``python -m helpers.results list [--profile P] [--json]``.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import fcntl
import hashlib
import json
import os
import shutil
import socket
import sys
import tempfile
import time
import warnings
import zipfile
from pathlib import Path

import numpy as np

from helpers.profiles import PROFILES, check_allowed
from helpers.sources import REPO_ROOT

RECORD_FILE = "record.json"
ARRAYS_FILE = "arrays.npz"
PARTIAL_DIR = ".partial"
LOCKS_DIR = ".locks"
REQUIRED_FIELDS = {"name": str, "key": str, "profile": str, "provenance": dict}
# the order of ``list``: the chapters' experiments first, in the book's order
CHAPTER_ORDER = ("baseline", "label_noise", "augmentation", "more_cats_and_dogs", "more_data")


class BrokenRecordWarning(UserWarning):
    """A folder in the registry is not a complete record; it is ignored (and retrained)."""


class RegistryError(OSError):
    """The registry folder cannot be used (it is a file, or not writable)."""


def results_root() -> Path:
    """The registry folder: ``$DCAI_RESULTS_DIR`` or ``results/`` in the repository."""
    return Path(os.environ.get("DCAI_RESULTS_DIR") or REPO_ROOT / "results")


def _root_hint() -> str:
    configured = os.environ.get("DCAI_RESULTS_DIR")
    if configured:
        return f"DCAI_RESULTS_DIR={configured}"
    return f"the default registry (DCAI_RESULTS_DIR is unset, so {REPO_ROOT / 'results'})"


def config_key(payload: dict) -> str:
    """A short deterministic hash of a JSON-able config."""
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=list)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


class Record:
    """A complete experiment or analysis result, read from its folder."""

    def __init__(self, path: Path, data: dict):
        self.path = Path(path)
        self.data = data
        self._arrays = None

    def __getitem__(self, item):
        return self.data[item]

    def get(self, item, default=None):
        return self.data.get(item, default)

    name = property(lambda self: self.data["name"])
    key = property(lambda self: self.data["key"])
    profile = property(lambda self: self.data["profile"])
    config = property(lambda self: self.data["config"])
    metrics = property(lambda self: self.data.get("metrics", {}))
    history = property(lambda self: self.data.get("history", {}))
    provenance = property(lambda self: self.data["provenance"])

    @property
    def arrays(self) -> dict[str, np.ndarray]:
        if self._arrays is None:
            file = self.path / ARRAYS_FILE
            self._arrays = {}
            if file.exists():
                with np.load(file, allow_pickle=False) as npz:
                    self._arrays = {k: npz[k] for k in npz.files}
        return self._arrays

    def metric(self, split: str, name: str) -> float:
        return self.metrics[split][name]

    def __repr__(self) -> str:
        return f"Record({self.name!r}, profile={self.profile!r}, key={self.key!r})"


def record_dir(profile: str, name: str, key: str) -> Path:
    return results_root() / profile / f"{name}-{key}"


_ARRAYS_CHECKED: dict[tuple[str, int, int], str | None] = {}
_WARNED: set[tuple[str, str]] = set()


def _check_arrays(file: Path) -> str | None:
    """Why ``arrays.npz`` is unreadable, or None when it is fine (cached per size and mtime)."""
    stat = file.stat()
    cache_key = (str(file), stat.st_size, stat.st_mtime_ns)
    if cache_key not in _ARRAYS_CHECKED:
        problem = None
        try:
            with zipfile.ZipFile(file) as archive:
                bad = archive.testzip()
            if bad is not None:
                problem = f"{ARRAYS_FILE} is corrupt (bad CRC in {bad})"
            else:
                with np.load(file, allow_pickle=False) as npz:
                    npz.files  # noqa: B018 - opening and listing is the check
        except Exception as error:  # BadZipFile, zlib.error, OSError, EOFError, ValueError, ...
            problem = f"{ARRAYS_FILE} is unreadable ({type(error).__name__}: {error})"
        _ARRAYS_CHECKED[cache_key] = problem
    return _ARRAYS_CHECKED[cache_key]


def check_record(path: Path) -> tuple[Record | None, str | None]:
    """Inspect one record folder without warning.

    Returns ``(record, None)`` for a complete record, ``(None, None)`` when nothing is at
    ``path``, and ``(None, reason)`` for a broken one (``reason``: one line, e.g.
    ``"record.json holds a list, not an object"``). Raises ProfileNotAllowedError when
    ``$DCAI_ONLY_PROFILE`` is set and the record (by its folder or its ``profile`` field)
    belongs to another profile."""
    path = Path(path)
    if path.parent.name in PROFILES:
        check_allowed(path.parent.name, f"record {path}")
    if not os.path.lexists(path):
        return None, None
    if not path.is_dir():
        return None, "not a folder"
    file = path / RECORD_FILE
    if not file.exists():
        return None, f"{RECORD_FILE} is missing"
    if file.is_dir():
        return None, f"{RECORD_FILE} is a folder"
    try:
        data = json.loads(file.read_bytes().decode("utf-8"))
    except (OSError, ValueError) as error:  # UnicodeDecodeError and JSONDecodeError included
        return None, f"{RECORD_FILE} is not valid JSON ({type(error).__name__}: {error})"
    if not isinstance(data, dict):
        return None, f"{RECORD_FILE} holds {type(data).__name__}, not a JSON object"
    if data.get("status") != "complete":
        return None, f"{RECORD_FILE} has status {data.get('status')!r}, not 'complete'"
    for field, kind in REQUIRED_FIELDS.items():
        if not isinstance(data.get(field), kind):
            return None, f"{RECORD_FILE} lacks {field!r} (or it is not a {kind.__name__})"
    for field in ("config", "metrics", "history"):
        if field in data and not isinstance(data[field], dict):
            return None, f"{RECORD_FILE}: {field!r} is not a JSON object"
    kind = data.get("kind", "experiment")
    if kind == "experiment" and not isinstance(data.get("config"), dict):
        return None, f"{RECORD_FILE} lacks 'config'"
    check_allowed(data["profile"], f"record {path}")
    arrays = path / ARRAYS_FILE
    if arrays.exists() or os.path.lexists(arrays):
        problem = _check_arrays(arrays) if arrays.is_file() else f"{ARRAYS_FILE} is not a file"
        if problem:
            return None, problem
    elif kind == "experiment":
        return None, f"{ARRAYS_FILE} is missing"
    return Record(path, data), None


def _warn_broken(path: Path, problem: str) -> None:
    if (str(path), problem) in _WARNED:
        return
    _WARNED.add((str(path), problem))
    warnings.warn(
        f"ignoring broken record {path}: {problem}. It does not count as complete: asking for "
        "this experiment trains it again and replaces the folder (or delete the folder).",
        BrokenRecordWarning, stacklevel=3)


def load(path: Path) -> Record | None:
    """The complete record in ``path``, or None when it is missing, incomplete or broken.

    A broken record (unreadable or incomplete ``record.json``, missing or corrupt
    ``arrays.npz``) gives one BrokenRecordWarning naming the path, once per process. Raises
    ProfileNotAllowedError for a record of another profile than ``$DCAI_ONLY_PROFILE``."""
    path = Path(path)
    record, problem = check_record(path)
    if problem:
        _warn_broken(path, problem)
    return record


def write(path: Path, data: dict, arrays: dict[str, np.ndarray] | None = None,
          files: dict[str, str] | None = None) -> Record:
    """Write a complete record atomically: build it in a temporary folder, then rename.

    ``files`` maps extra file names (e.g. a CSV) to their text."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # round-trip through JSON so the returned record equals what a later load() reads
    data = json.loads(json.dumps({**data, "status": "complete"}))
    tmp = Path(tempfile.mkdtemp(prefix=f"{path.name}.tmp-", dir=path.parent))
    try:
        if arrays:
            np.savez_compressed(tmp / ARRAYS_FILE, **arrays)
        for name, text in (files or {}).items():
            (tmp / name).write_text(text)
        (tmp / RECORD_FILE).write_text(json.dumps(data, indent=1, sort_keys=False) + "\n")
        if path.is_dir() and not path.is_symlink():  # an incomplete leftover, or an update
            shutil.rmtree(path)
        elif os.path.lexists(path):  # a broken record that is a file or a link
            path.unlink()
        os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return Record(path, data)


def update(record: Record, **fields) -> Record:
    """Add fields (e.g. a later chapter's metrics) to a record, atomically."""
    data = {**record.data, **fields}
    file = record.path / RECORD_FILE
    tmp = file.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(data, indent=1) + "\n")
    os.replace(tmp, file)
    record.data = data
    return record


def _check_root(root: Path) -> None:
    if os.path.lexists(root) and not root.is_dir():
        raise RegistryError(
            f"the experiment registry {root} is not a folder ({_root_hint()}): point "
            "DCAI_RESULTS_DIR at a folder (it is created if missing)")


def scan(profile: str | None = None):
    """Every entry of the registry: yields ``(path, record, problem)`` per record folder, in
    folder order, with ``record`` None and ``problem`` a one-line reason for broken entries.
    Hidden entries (``.partial``, ``.locks``) and temporary folders are skipped.

    Raises RegistryError when the registry is a file, and ProfileNotAllowedError for a folder
    of another profile than ``$DCAI_ONLY_PROFILE``."""
    root = results_root()
    _check_root(root)
    if profile:
        check_allowed(profile, f"registry folder {root / profile}")
        folders = [root / profile]
    else:
        folders = sorted(p for p in root.glob("*") if not p.name.startswith("."))
    for folder in folders:
        if not os.path.lexists(folder):
            continue
        if folder.name in PROFILES or folder.is_dir():
            check_allowed(folder.name, f"registry folder {folder}")
        if not folder.is_dir():
            yield folder, None, "not a folder (a registry holds one folder per profile)"
            continue
        for path in sorted(folder.glob("*")):
            if path.name.startswith(".") or ".tmp-" in path.name:
                continue
            record, problem = check_record(path)
            yield path, record, problem


def iter_records(profile: str | None = None):
    """The complete records of ``profile`` (all profiles when None), in folder order.

    Broken records are skipped with one BrokenRecordWarning each. Raises like :func:`scan`."""
    for path, record, problem in scan(profile):
        if problem:
            _warn_broken(path, problem)
        elif record is not None:
            yield record


def ensure_writable(profile: str) -> Path:
    """Create ``<registry>/<profile>`` and check that a file can be written there.

    Call it before training starts. Returns the folder. Raises RegistryError naming
    DCAI_RESULTS_DIR and the fix when the registry is a file, or the folder cannot be
    created or written (read-only file system, permissions)."""
    from helpers.profiles import get_profile

    name = get_profile(profile).name
    root = results_root()
    folder = root / name
    try:
        _check_root(root)
        folder.mkdir(parents=True, exist_ok=True)
        probe = tempfile.NamedTemporaryFile(dir=folder, prefix=".write-probe-", delete=True)
        with probe:
            probe.write(b"ok")
            probe.flush()
    except RegistryError:
        raise
    except OSError as error:
        raise RegistryError(
            f"the experiment registry {folder} is not a writable folder "
            f"({type(error).__name__}: {error.strerror or error}); it is {_root_hint()}. "
            "Set DCAI_RESULTS_DIR to a folder you can write to (it is created if missing), "
            f"or fix the permissions of {root}."
        ) from error
    return folder


def partial_dir(record_dir: Path, suffix: str = "") -> Path:
    """Where an interrupted run of ``record_dir`` keeps its checkpoint:
    ``<registry>/<profile>/.partial/<folder name><suffix>`` (git-ignored)."""
    record_dir = Path(record_dir)
    return record_dir.parent / PARTIAL_DIR / f"{record_dir.name}{suffix}"


def lock_file(record_dir: Path) -> Path:
    """The lock file of a run: ``<registry>/<profile>/.locks/<folder name>.lock``."""
    record_dir = Path(record_dir)
    return record_dir.parent / LOCKS_DIR / f"{record_dir.name}.lock"


_HELD_LOCKS: dict[str, int] = {}  # lock file -> nesting depth, for this process


def _holder(fd: int) -> dict:
    try:
        holder = json.loads(os.pread(fd, 4096, 0).decode() or "{}")
        return holder if isinstance(holder, dict) else {}
    except (OSError, ValueError):
        return {}


@contextlib.contextmanager
def run_lock(record_dir: Path, timeout: float | None = None):
    """Hold the exclusive lock of one run (one record folder) while it trains.

    The lock is an ``fcntl.flock`` on :func:`lock_file`, which holds the holder's pid, host,
    start time and run name (JSON). When another process holds it, prints once
    ``waiting for process PID on HOST, which is training NAME (since …)`` to stderr and
    blocks until it is released; with ``timeout`` (seconds) raises TimeoutError with that
    message instead of waiting longer. The operating system releases the lock when its holder
    dies, so a killed run never blocks the next one. Re-entrant within one process. Yields
    the lock file's path."""
    record_dir = Path(record_dir)
    path = lock_file(record_dir)
    key = str(path)
    if key in _HELD_LOCKS:
        _HELD_LOCKS[key] += 1
        try:
            yield path
        finally:
            _HELD_LOCKS[key] -= 1
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(fd)
            message = (f"waiting for process {holder.get('pid', '?')} on "
                       f"{holder.get('host', 'an unknown host')}, which is training "
                       f"{holder.get('name', record_dir.name)}"
                       + (f" (since {holder['started']})" if holder.get("started") else "")
                       + f"; lock file {path}")
            print(message, file=sys.stderr, flush=True)
            if timeout is None:
                fcntl.flock(fd, fcntl.LOCK_EX)
            else:
                deadline = time.monotonic() + timeout
                while True:
                    try:
                        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                        break
                    except BlockingIOError:
                        if time.monotonic() >= deadline:
                            raise TimeoutError(f"{message}: still held after {timeout:g} s") \
                                from None
                        time.sleep(min(0.2, max(0.0, deadline - time.monotonic())))
        info = json.dumps({
            "pid": os.getpid(), "host": socket.gethostname(), "name": record_dir.name,
            "started": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        }).encode()
        os.ftruncate(fd, 0)
        os.pwrite(fd, info, 0)
        _HELD_LOCKS[key] = 1
        try:
            yield path
        finally:
            del _HELD_LOCKS[key]
    finally:
        try:
            fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)


def is_full_model(record: Record) -> bool:
    """A training run whose model saw its whole training set: not an analysis record, and not
    a cross-validation fold (those hold out a quarter of their data)."""
    return record.get("kind", "experiment") == "experiment" and not record.config.get("cv_folds")


def _short_metrics(record: Record) -> dict:
    out = {}
    for split in ("validation", "test"):
        m = record.metrics.get(split)
        if m and "accuracy" in m:
            out[split] = {"accuracy": m["accuracy"], "macro_f1": m["macro_f1"]}
    shift = record.get("shift")
    if shift:  # the mean over the 50 shifted test sets (helpers.corruptions)
        out["corruption"] = {"accuracy": shift["corruption_accuracy"],
                             "macro_f1": shift["corruption_macro_f1"]}
    return out


def summary_line(record: Record) -> dict:
    """What ``list`` prints for one record."""
    return {
        "name": record.name,
        "profile": record.profile,
        "seed": record.get("seed"),
        "key": record.key,
        "kind": record.get("kind", "experiment"),
        "recipe": record_recipe(record),
        "config": record.get("summary", ""),
        "metrics": _short_metrics(record),
        "analysis": record.get("analysis", {}),
        "provenance": record.provenance,
        "path": str(record.path),
    }


def record_recipe(record: Record) -> str:
    """The recipe version a record was made with (records made before recipes had names
    carry none: they are the legacy recipe ``v1-bn0.999``)."""
    return (record.get("recipe") or (record.get("config") or {}).get("recipe")
            or "v1-bn0.999")


def wall_seconds(record: Record) -> float:
    """Seconds a training run spent in training steps and validation (0 for an analysis).
    Records of the legacy recipe hold the two together in ``seconds``."""
    history = record.get("history") or {}
    return float(history.get("seconds", 0) + history.get("validation_seconds", 0))


def list_order(record: Record) -> tuple:
    """The sort key of ``list``: profile (smoke, quick, full), then experiment name in the
    chapters' order (CHAPTER_ORDER, then the others alphabetically), config summary, seed."""
    profiles = list(PROFILES)
    profile = record.profile
    name = record.name
    seed = record.get("seed")
    return (
        (profiles.index(profile), "") if profile in profiles else (len(profiles), str(profile)),
        (CHAPTER_ORDER.index(name), "") if name in CHAPTER_ORDER else (len(CHAPTER_ORDER), name),
        record_recipe(record),
        str(record.get("summary", "")),
        (0, seed, "") if isinstance(seed, (int, float)) else (1, 0, str(seed)),
        record.key,
    )


SPLIT_LABELS = {"corruption": "shifted test sets (mean of 50)"}


def _format_text(line: dict) -> str:
    metrics = "; ".join(
        f"{SPLIT_LABELS.get(split, split)}: accuracy {m['accuracy']:.3f}, "
        f"macro-F1 {m['macro_f1']:.3f}" for split, m in line["metrics"].items())
    prov = line["provenance"]
    return (f"{line['name']:<28} {line['profile']:<6} seed={line['seed']!s:<3} {line['key']}  "
            f"recipe {line['recipe']}  {line['config']}\n    {metrics or '(analysis)'}\n"
            f"    data: {prov.get('data_source')}; weights: {prov.get('weights_source')}; "
            f"{prov.get('hardware')}; {prov.get('date')}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m helpers.results",
                                     description="The book's experiment registry.")
    sub = parser.add_subparsers(dest="command", required=True)
    lister = sub.add_parser("list", help="one line per completed experiment")
    lister.add_argument("--profile", help="smoke, quick or full (default: all)")
    lister.add_argument("--json", action="store_true", help="one JSON object per line")
    args = parser.parse_args(argv)
    if args.profile:
        from helpers.profiles import get_profile

        try:
            get_profile(args.profile)
        except ValueError as error:  # one line naming the valid profiles, not a traceback
            parser.error(str(error))
    try:
        entries = list(scan(args.profile))
    except RegistryError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    records = sorted((r for _, r, _ in entries if r is not None), key=list_order)
    broken = [(path, problem) for path, _, problem in entries if problem]
    for record in records:
        line = summary_line(record)
        print(json.dumps(line) if args.json else _format_text(line), flush=True)
    if broken:
        print(f"{len(broken)} broken record{'s' if len(broken) > 1 else ''} (not complete, not "
              "listed; asking for the experiment trains it again): "
              + "; ".join(f"{path} ({problem})" for path, problem in broken), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
