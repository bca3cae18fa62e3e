"""The experiment registry on disk. Never imports TensorFlow, so listing is instant.

Layout: ``results/<profile>/<name>-<key>/`` holds ``record.json`` (config, history, metrics,
provenance, and whatever analyses add) and ``arrays.npz`` (compact predicted probabilities
and ids). A folder is written under a temporary name and renamed into place only when
complete, so a killed run never leaves anything that counts as a result.

CLI: ``python -m helpers.results list [--profile P] [--json]``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

from helpers.sources import REPO_ROOT

RECORD_FILE = "record.json"
ARRAYS_FILE = "arrays.npz"


def results_root() -> Path:
    return Path(os.environ.get("DCAI_RESULTS_DIR") or REPO_ROOT / "results")


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


def load(path: Path) -> Record | None:
    """The record in ``path``, or None when it is missing or incomplete."""
    file = Path(path) / RECORD_FILE
    try:
        data = json.loads(file.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    if data.get("status") != "complete":
        return None
    return Record(path, data)


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
        if path.exists():  # an incomplete leftover, or a record being updated
            shutil.rmtree(path)
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


def iter_records(profile: str | None = None):
    root = results_root()
    folders = [root / profile] if profile else sorted(p for p in root.glob("*") if p.is_dir())
    for folder in folders:
        for path in sorted(folder.glob("*")):
            if path.is_dir() and ".tmp-" not in path.name:
                record = load(path)
                if record is not None:
                    yield record


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
    return out


def summary_line(record: Record) -> dict:
    """What ``list`` prints for one record."""
    return {
        "name": record.name,
        "profile": record.profile,
        "seed": record.get("seed"),
        "key": record.key,
        "kind": record.get("kind", "experiment"),
        "config": record.get("summary", ""),
        "metrics": _short_metrics(record),
        "analysis": record.get("analysis", {}),
        "provenance": record.provenance,
        "path": str(record.path),
    }


def _format_text(line: dict) -> str:
    metrics = "  ".join(
        f"{split[:4]} acc {m['accuracy']:.3f} F1 {m['macro_f1']:.3f}"
        for split, m in line["metrics"].items())
    prov = line["provenance"]
    return (f"{line['name']:<28} {line['profile']:<6} seed={line['seed']!s:<3} {line['key']}  "
            f"{line['config']}\n    {metrics or '(analysis)'}\n"
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

        get_profile(args.profile)  # a clear error for unknown names
    for record in iter_records(args.profile):
        line = summary_line(record)
        print(json.dumps(line) if args.json else _format_text(line))
    return 0


if __name__ == "__main__":
    sys.exit(main())
