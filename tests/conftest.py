import os

import pytest

# Tests never download and always use the tiny profile, whatever the caller's environment.
os.environ.setdefault("DCAI_OFFLINE", "1")
os.environ["DCAI_PROFILE"] = "smoke"


@pytest.fixture(autouse=True, scope="module")
def _unit_tests_may_use_any_profile():
    """`make test` sets DCAI_ONLY_PROFILE=smoke for the notebook tests (nbval kernels inherit
    it); unit tests in this folder check all profiles, so they run without the guard unless a
    test sets it itself. Module scope, so that module-scoped fixtures (e.g. the full split in
    test_data.py) run without it too; restored after each module."""
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("DCAI_ONLY_PROFILE", raising=False)
        yield


@pytest.fixture
def results_dir(tmp_path, monkeypatch):
    """A private, empty registry for one test."""
    monkeypatch.setenv("DCAI_RESULTS_DIR", str(tmp_path / "results"))
    return tmp_path / "results"


def pytest_configure(config):
    config.addinivalue_line("markers", "needs_data: reads CIFAR-10 (offline copy or download)")


def pytest_collection_modifyitems(config, items):
    from helpers import sources

    # In CI the data must be there: a missing copy fails the tests instead of skipping them.
    if sources.tfds_data_dir() is None and not os.environ.get("CI"):
        skip = pytest.mark.skip(reason="needs CIFAR-10 offline: set DCAI_SHARED or TFDS_DATA_DIR")
        for item in items:
            if "needs_data" in item.keywords:
                item.add_marker(skip)
