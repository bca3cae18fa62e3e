import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
import badges  # noqa: E402
import check_book  # noqa: E402


def test_committed_notebooks_have_uniform_badges():
    assert badges.main(["--check"]) == 0


def _repository():
    config = yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]
    url = config["url"].rstrip("/")
    return url, url.removeprefix("https://github.com/"), config["branch"]


def _cells(path):
    return json.loads(path.read_text(encoding="utf-8"))["cells"]


def test_every_badge_and_install_line_matches_config():
    """Read independently of tools/badges.py: the address is the one in _config.yml."""
    url, slug, branch = _repository()
    name = slug.rsplit("/", 1)[1]
    reading = {"intro.ipynb", "closing_thoughts.ipynb"}  # summaries of the records, not to run
    pages = sorted((ROOT / "notebooks").glob("*.ipynb")) + sorted(
        p for p in (ROOT / "book").glob("*.ipynb") if p.name not in reading)
    assert ROOT / "book/results_overview.ipynb" in pages
    for path in pages:
        cells = _cells(path)
        relative = path.relative_to(ROOT).as_posix()
        assert "colab-badge" in cells[0]["metadata"].get("tags", []), relative
        assert (f"https://colab.research.google.com/github/{slug}/blob/{branch}/{relative})"
                in "".join(cells[0]["source"])), relative
        setups = [c for c in cells if "colab-setup" in c["metadata"].get("tags", [])]
        assert len(setups) == 1, relative
        source = "".join(setups[0]["source"])
        assert f'REPOSITORY = "{url}"\nCLONE = "/content/{name}"\n' in source, relative
        assert f"!git clone --depth 1 --branch {branch} {{REPOSITORY}} {{CLONE}}" in source, relative
        assert "%pip install -q -e {CLONE}" in source, relative
        assert "sys.path.insert(0, CLONE)" in source, relative
        assert f'os.chdir(f"{{CLONE}}/{Path(relative).parent.as_posix()}")' in source, relative
        assert "DCAI_RESULTS_DIR" in source  # says how to retrain on the Colab GPU instead
        parameters = [i for i, c in enumerate(cells) if "parameters" in c["metadata"].get("tags", [])]
        assert cells.index(setups[0]) == parameters[0] - 1, relative
        # every git URL in the notebook's code is the configured one
        for cell in cells:
            for line in "".join(cell["source"]).splitlines():
                if "github.com/" in line and cell["cell_type"] == "code":
                    assert url in line, f"{relative}: {line}"


def _colab_cell(cell):
    """The badge or the setup cell, tagged or (before the tool first ran) by its content."""
    return ({"colab-badge", "colab-setup"} & set(cell["metadata"].get("tags", []))
            or badges.SETUP_MARKER in "".join(cell["source"]))


def _tmp_root(tmp_path, monkeypatch, url=None):
    """A copy of the repository's config and two notebooks, as tools/badges.py's root."""
    config = (ROOT / "_config.yml").read_text()
    if url:
        config = config.replace(_repository()[0], url)
    (tmp_path / "_config.yml").write_text(config)
    for relative in ("notebooks/01_baseline.ipynb", "book/results_overview.ipynb"):
        (tmp_path / relative).parent.mkdir(exist_ok=True)
        (tmp_path / relative).write_bytes((ROOT / relative).read_bytes())
    # the overview as it was before the tool first ran: no badge, no setup cell
    overview = tmp_path / "book/results_overview.ipynb"
    nb = json.loads(overview.read_text(encoding="utf-8"))
    nb["cells"] = [c for c in nb["cells"] if not _colab_cell(c)]
    overview.write_text(json.dumps(nb, indent=1, sort_keys=True, ensure_ascii=False), encoding="utf-8")
    monkeypatch.setattr(badges, "ROOT", tmp_path)
    return tmp_path / "notebooks/01_baseline.ipynb", tmp_path / "book/results_overview.ipynb"


def test_badge_tool_detects_a_mismatch_with_config(tmp_path, monkeypatch):
    chapter, overview = _tmp_root(tmp_path, monkeypatch, url="https://github.com/someone/fork")
    found = badges.problems(chapter)
    assert any("badge" in problem for problem in found)
    assert any("setup cell" in problem for problem in found)
    assert any("setup cell" in problem for problem in badges.problems(overview))
    assert "no Colab badge" in badges.problems(overview)
    assert badges.main(["--check", str(chapter), str(overview)]) == 1
    assert badges.fix(chapter) and badges.fix(overview)
    assert badges.problems(chapter) == [] and badges.problems(overview) == []
    text = chapter.read_text()
    assert 'REPOSITORY = \\"https://github.com/someone/fork\\"' in text
    assert 'CLONE = \\"/content/fork\\"' in text


def test_badge_tool_is_idempotent_and_changes_nothing_else(tmp_path, monkeypatch):
    chapter, overview = _tmp_root(tmp_path, monkeypatch)
    nb = json.loads(chapter.read_text(encoding="utf-8"))
    untouched = [c for c in nb["cells"] if not _colab_cell(c)]
    # an old badge, a second badge, an old-style setup cell in the wrong place
    nb["cells"][0]["source"] = ["[old badge](https://example.com)"]
    nb["cells"].insert(5, {"cell_type": "markdown", "id": "dup", "metadata": {"tags": [badges.TAG]},
                           "source": ["dup"]})
    setup = next(c for c in nb["cells"] if badges.SETUP_MARKER in "".join(c["source"]))
    setup["source"] = ['import sys\n', 'if "google.colab" in sys.modules:\n',
                       '    %pip install -q "dcai-book-helpers @ git+https://example.com/old"']
    setup["metadata"]["tags"] = []
    nb["cells"].remove(setup)
    nb["cells"].insert(7, setup)
    chapter.write_text(json.dumps(nb, indent=1, sort_keys=True, ensure_ascii=False), encoding="utf-8")

    overview_before = json.loads(overview.read_text(encoding="utf-8"))["cells"]
    assert badges.main([str(chapter), str(overview)]) == 0
    assert badges.problems(chapter) == [] and badges.problems(overview) == []
    fixed = json.loads(chapter.read_text(encoding="utf-8"))["cells"]
    kept = [c for c in fixed if not _colab_cell(c)]
    assert kept == untouched  # every other cell, outputs included, exactly as it was
    assert fixed[0]["source"] == badges._lines(badges.badge_source(chapter))
    # the overview gained a badge and a setup cell right before its parameters cell (after the
    # title), nothing else changed
    after = json.loads(overview.read_text(encoding="utf-8"))["cells"]
    assert ([c for c in after if not _colab_cell(c)]
            == [c for c in overview_before if not _colab_cell(c)])
    tags = [c["metadata"].get("tags", []) for c in after]
    assert "colab-badge" in tags[0] and after[1]["cell_type"] == "markdown"  # badge, title
    assert tags.index(["colab-setup"]) == [i for i, t in enumerate(tags) if "parameters" in t][0] - 1
    # idempotent: a second run leaves the bytes alone
    before = chapter.read_bytes(), overview.read_bytes()
    assert badges.fix(chapter) is False and badges.fix(overview) is False
    assert (chapter.read_bytes(), overview.read_bytes()) == before


def test_badge_points_at_the_notebook_in_the_configured_repository():
    source = badges.badge_source(ROOT / "notebooks" / "05_more_data.ipynb")
    assert "colab.research.google.com/github/" in source
    assert source.endswith("/blob/main/notebooks/05_more_data.ipynb)")


def test_readme_and_landing_page_say_where_the_book_is_read_online():
    url, slug, _ = _repository()
    owner, name = slug.split("/")
    pages = f"https://{owner.lower()}.github.io/{name}/"
    assert badges.pages_url() == pages == "https://dcai-book.github.io/data-centric-ai-book/"
    assert pages in (ROOT / "README.md").read_text()
    assert pages in (ROOT / "book/intro.ipynb").read_text()


# --- the publishing workflow --------------------------------------------------------------------

WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.y*ml"))


def lint_workflow(path: Path) -> subprocess.CompletedProcess:
    """Validate a GitHub Actions workflow against the github-workflows JSON schema that
    check-jsonschema ships (offline); actionlint runs as well where it is installed."""
    done = subprocess.run([sys.executable, "-m", "check_jsonschema", "--builtin-schema",
                           "vendor.github-workflows", str(path)], capture_output=True, text=True)
    if done.returncode == 0 and shutil.which("actionlint"):
        done = subprocess.run(["actionlint", "-no-color", str(path)], capture_output=True, text=True)
    return done


def test_there_is_a_pages_workflow():
    assert WORKFLOWS, "no workflow in .github/workflows"
    text = "\n".join(path.read_text() for path in WORKFLOWS)
    workflow = yaml.safe_load((ROOT / ".github/workflows/deploy-book.yml").read_text())
    assert workflow[True]["push"]["branches"] == ["main"]  # YAML reads the key `on` as True
    assert workflow["permissions"] == {"contents": "read", "pages": "write", "id-token": "write"}
    assert "pip install -r requirements.txt" in text and "jupyter-book build ." in text
    assert "actions/upload-pages-artifact@" in text and "actions/deploy-pages@" in text


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_workflow_passes_the_linter(path):
    done = lint_workflow(path)
    assert done.returncode == 0, done.stdout + done.stderr


def test_workflow_linter_fails_on_a_broken_workflow(tmp_path):
    broken = tmp_path / "broken.yml"
    text = (ROOT / ".github/workflows/deploy-book.yml").read_text()
    broken.write_text(text.replace("runs-on: ubuntu-latest", "runs_on: ubuntu-latest"))
    done = lint_workflow(broken)
    assert done.returncode != 0 and "runs-on" in done.stdout + done.stderr
    broken.write_text("name: x\non: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n"
                      "    steps:\n      - run: echo hi\n        uses: actions/checkout@v4\n")
    assert lint_workflow(broken).returncode != 0


# --- the checks of the built book ---------------------------------------------------------------

PAGE = """<!DOCTYPE html><html><head><title>t</title></head><body>
<dialog id="pst-search-dialog"><form class="bd-search"><input type="search" name="q"/></form></dialog>
<div class="sidebar-primary-item"><button class="btn search-button-field">Search</button></div>
{extra}
<main><article class="bd-article">
<p>Provenance: JPEG copy of CIFAR-10 (tfds download).</p>
{body}
</article></main></body></html>"""
GOOD_FIGURE = ('<figure><img alt="Test accuracy per noise rate" src="../_images/a.png"/>'
               '<figcaption><p>Accuracy falls with noise.</p></figcaption></figure>')


def _page(tmp_path, body="", extra=""):
    html = tmp_path / "html"
    (html / "_images").mkdir(parents=True, exist_ok=True)
    (html / "_images" / "a.png").write_bytes(b"png")
    (html / "book").mkdir(exist_ok=True)
    (html / "book" / "page.html").write_text(PAGE.format(body=body, extra=extra))
    return html


def test_book_check_passes_a_clean_page(tmp_path):
    html = _page(tmp_path, body=GOOD_FIGURE)
    assert check_book.check_page("book/page", html, set(check_book.CHECKS)) == []


@pytest.mark.parametrize("check, body, extra", [
    ("search", "", '<header><div class="navbar-persistent--container">'
                   '<button class="btn search-button-field">Search</button></div></header>'),
    ("paths", "<p>Data: /work/shared/tensorflow_datasets</p>", ""),
    ("paths", "<pre>/home/me/.venv/lib/python3.11/site-packages/x.py</pre>", ""),
    ("paths", "<p>(/tmp/pytest-1/results)</p>", ""),
    ("nbval", '<pre><span class="c1"># NBVAL_CHECK_OUTPUT</span></pre>', ""),
    ("parameters", '<pre><span class="c1"># Parameters</span>\nprofile = "full"</pre>', ""),
    ("captions", '<img alt="Test accuracy" src="../_images/a.png"/>', ""),
    ("captions", '<figure><img alt="Test accuracy" src="../_images/a.png"/><figcaption></figcaption></figure>', ""),
    ("alt", '<figure><img alt="../_images/2ebcddd692c1b3a662aec9a212e4a1344c99.png" '
            'src="../_images/a.png"/><figcaption>c</figcaption></figure>', ""),
    ("alt", '<figure><img src="../_images/a.png"/><figcaption>c</figcaption></figure>', ""),
])
def test_book_check_finds_each_kind_of_problem(tmp_path, check, body, extra):
    html = _page(tmp_path, body=body, extra=extra)
    found = check_book.check_page("book/page", html, set(check_book.CHECKS))
    assert check in {name for name, _ in found}, found
    assert check_book.check_page("book/page", html, set(check_book.CHECKS) - {check}) == [
        item for item in found if item[0] != check]


def test_book_check_only_runs_the_named_checks_and_rejects_unknown_ones():
    assert check_book.parse_only(["search,paths", "alt"], check_book.CHECKS) == {"search", "paths", "alt"}
    assert check_book.parse_only(None, check_book.CHECKS) == set(check_book.CHECKS)
    with pytest.raises(SystemExit):
        check_book.parse_only(["serach"], check_book.CHECKS)


@pytest.mark.skipif(not any(shutil.which(b) for b in ("chromium", "chromium-browser")),
                    reason="needs Chromium (apt-get install chromium)")
def test_browser_check_measures_search_boxes_and_table_widths(tmp_path):
    import browser_check

    wide = "<table><tr>" + "".join(f"<td>column {i} with a long value</td>" for i in range(30)) + "</tr></table>"
    narrow = "<table><tr><td>a</td><td>b</td></tr></table>"
    html = tmp_path / "html"
    html.mkdir()
    page = PAGE.replace('<article class="bd-article">', '<article class="bd-article" style="width:600px">')
    (html / "bad.html").write_text(page.format(
        body=wide, extra='<button class="btn search-button-field">Search</button>'))
    (html / "good.html").write_text(page.format(body=narrow, extra=""))
    server, base = browser_check.serve(html)
    try:
        checks = {"search-visible", "tables"}
        bad = browser_check.check_page(browser_check.chromium(), f"{base}/bad.html",
                                       tmp_path / "bad.png", checks)
        good = browser_check.check_page(browser_check.chromium(), f"{base}/good.html",
                                        tmp_path / "good.png", checks)
    finally:
        server.shutdown()
    assert {name for name, _ in bad} == {"search-visible", "tables"}, bad
    assert good == [], good


def test_every_notebook_has_a_parameters_cell_and_setup():
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")) + [ROOT / "book/results_overview.ipynb"]:
        nb = nbformat.read(path, as_version=4)
        tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
        assert len(tagged) == 1, path.name
        assert 'os.environ.get("DCAI_PROFILE", "full")' in tagged[0].source


def test_committed_outputs_never_come_from_smoke():
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")) + [ROOT / "book/results_overview.ipynb"]:
        text = path.read_text()
        assert "Profile `smoke`" not in text, f"{path.name} has smoke outputs committed"


def test_runner_drops_tensorflow_native_startup_lines_but_keeps_warnings():
    import nbformat
    from helpers.run import drop_native_startup_logs

    startup = ("WARNING: All log messages before absl::InitializeLog() is called are written to "
               "STDERR\nI0000 00:00:1796012079.994263   12510 port.cc:153] oneDNN custom "
               "operations are on.\nI0000 00:00:1796012079.997987   12510 cudart_stub.cc:31] "
               "Could not find cuda drivers on your machine, GPU will not be used.\n")
    kept = "UserWarning: something the reader should see\n"
    cell = nbformat.v4.new_code_cell("import tensorflow")
    cell.outputs = [nbformat.v4.new_output("stream", name="stderr", text=startup),
                    nbformat.v4.new_output("stream", name="stderr", text=startup + kept),
                    nbformat.v4.new_output("stream", name="stdout", text="I0000 stays in stdout\n")]
    nb = nbformat.v4.new_notebook(cells=[cell])
    drop_native_startup_logs(nb)
    assert [o["text"] for o in nb.cells[0].outputs] == [kept, "I0000 stays in stdout\n"]


def test_committed_notebooks_carry_no_tensorflow_startup_lines():
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")) + [ROOT / "book/results_overview.ipynb"]:
        assert "absl::InitializeLog" not in path.read_text(), f"{path.name}: re-run it with helpers.run"


@pytest.mark.needs_data
def test_runner_executes_a_notebook_in_smoke(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "helpers.run", "--profile", "smoke", "--output-dir", str(tmp_path),
         "01_baseline"], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "01_baseline.ipynb done" in done.stdout
    nb = nbformat.read(tmp_path / "01_baseline.ipynb", as_version=4)
    outputs = json.dumps([c.get("outputs", []) for c in nb.cells])
    assert "Profile `smoke`" in outputs and "2,236,682 trainable parameters" in outputs
    assert '"output_type": "error"' not in outputs


def test_runner_names_the_failing_cell(tmp_path):
    broken = tmp_path / "99_broken.ipynb"
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("profile = 'smoke'", metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell("raise RuntimeError('boom')")])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, broken)
    done = subprocess.run([sys.executable, "-m", "helpers.run", "--profile", "smoke",
                           "--output-dir", str(tmp_path / "out"), str(broken)],
                          capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 1
    assert "99_broken.ipynb" in done.stderr and "boom" in done.stderr


def test_runner_rejects_unknown_notebook():
    done = subprocess.run([sys.executable, "-m", "helpers.run", "--profile", "smoke", "nope"],
                          capture_output=True, text=True, cwd=ROOT)
    assert done.returncode != 0 and "unknown notebook" in done.stderr


def test_catalog_lists_every_run_of_every_chapter(results_dir):
    done = subprocess.run([sys.executable, "-m", "helpers.scheduler", "--profile", "smoke", "--list"],
                          capture_output=True, text=True, cwd=ROOT, check=True,
                          env={**os.environ, "DCAI_RESULTS_DIR": str(results_dir)})
    header, *lines = done.stdout.splitlines()
    # 86 steps; the analyses train folds, repairs and retrains of their own: confident learning
    # in smoke has 2 fold runs per setting, 2 x 3 repairs and an analysis per repair setting, and
    # at 10% 1 noisy run beyond the round's (training seed 1 on noise seed 0); the 40% settings'
    # noisy runs are the rounds' own, every training seed on noise seed 0
    # (+ 2 x 2 fold runs of the crop + flip detector at the very end)
    assert header.startswith("99 records of smoke not made yet (no recorded run")
    steps = [line.split("] ", 1)[1] for line in lines]
    # the recipe seed study (3 recipes x 3 seeds + 2 probes), then three seed rounds of 16
    # configurations (article grid, the two augmentations of chapter 8, 40% symmetric and
    # class-conditional noise, crop+flip's halves alone) each followed by its deduplicated
    # retrain and (seeds 0 and 1 in smoke) that seed's confident-learning runs of the three
    # settings that repair; after the first round the dataset audit and the fold runs of the
    # four confident-learning settings (2 each in smoke), after the last round the test-set
    # audit (its ensemble has every seed); the detection-only setting's analysis after its
    # folds, the three others' at the end, then the fold runs of the crop + flip detector of
    # the two 40% settings
    assert len(steps) == 11 + 3 * 16 + 3 + 2 + 4 * 2 + 2 * 3 + 4 + 2 * 2
    folds = [n for n, step in enumerate(steps) if step.startswith("cv_fold")]
    seed_runs = [n for n, step in enumerate(steps) if "training seed" in step]
    analyses = [n for n, step in enumerate(steps)
                if step.startswith("confident_learning") and "training seed" not in step]
    assert len(folds) == 12 and len(seed_runs) == 6 and len(analyses) == 4
    assert folds[8:] == list(range(len(steps) - 4, len(steps)))
    assert all("crop+flip" in steps[n] for n in folds[8:])
    assert not any("crop+flip" in steps[n] for n in folds[:8])
    # the folds of the settings that repair come before any repair; seed 0 of every such
    # setting before seed 1; each setting's analysis after all its seeds
    assert max(folds[:6]) < min(seed_runs)
    assert "class-conditional" in steps[folds[0]] and steps[seed_runs[0]].startswith(
        "confident_learning pairs40, training seed 0")
    assert [steps[n].split(":")[0].split(", ")[1] for n in seed_runs] == [
        "training seed 0"] * 3 + ["training seed 1"] * 3
    assert steps[analyses[0]].startswith("confident_learning symmetric02")
    assert max(seed_runs) < min(analyses[1:]) and analyses[1:] == [len(steps) - 7,
                                                                   len(steps) - 6,
                                                                   len(steps) - 5]
    assert sum(step.startswith("baseline") for step in steps) == 11
    assert sum("+10 cat, +10 dog" in step for step in steps) == 3
    assert sum(step.startswith("deployment_augmentation") for step in steps) == 3
    assert sum(step.startswith(("crop_only", "flip_only")) for step in steps) == 6
    assert sum("class-conditional" in step and not step.startswith("cv_fold")
               for step in steps) == 3
    assert sum(step.startswith("deduplicated") for step in steps) == 3
    audit_step = next(n for n, step in enumerate(steps) if step.startswith("test_set_audit"))
    assert audit_step > max(n for n, step in enumerate(steps) if "seed=2" in step)
    assert "(analysis: 0 of 25 records made" in steps[audit_step]  # 24 members + the audit
    assert all(step.endswith("[to train]") for step in steps if "key=" in step)
    assert not results_dir.exists()  # listing trains nothing


def test_the_grid_walks_every_confident_learning_setting_once():
    from helpers import confident, scheduler

    assert sorted(scheduler.CL_ORDER) == sorted(s.name for s in confident.SETTINGS)


def test_one_training_seed_of_a_setting_is_planned_before_its_analysis(results_dir):
    from helpers import confident

    pairs = confident.setting("pairs40")
    planned = confident.planned_seed(pairs, 1, "smoke")
    # the fold runs, the noisy run of seed 1, and three repairs not configured until the folds
    # have flagged something; every label is also one of the analysis's own
    assert len(planned) == confident.folds("smoke") + 1 + len(confident.REPAIRS)
    assert not any(done for _, done in planned)
    assert sum("configured once the folds are recorded" in label for label, _ in planned) == 3
    assert {label for label, _ in planned} <= {label for label, _ in confident.planned(pairs,
                                                                                       "smoke")}
    with pytest.raises(ValueError, match="only grades detection"):
        confident.planned_seed("symmetric02", 0, "smoke")
    with pytest.raises(ValueError, match="choose one or more of 0, 1"):
        confident.train_seed(pairs, 2, "smoke")
    assert not results_dir.exists()  # nothing trained


def test_grid_cost_counts_only_runs_of_the_books_recipe(monkeypatch):
    from helpers import recipe, results, scheduler

    current = recipe.get_recipe().name
    fake = [{"kind": "experiment", "recipe": current, "history": {"seconds": 600,
                                                                   "validation_seconds": 60}},
            {"kind": "experiment", "recipe": current, "history": {"seconds": 1200}},
            {"kind": "experiment", "recipe": "legacy", "history": {"seconds": 9999}},
            {"kind": "analysis", "recipe": current}]
    monkeypatch.setattr(results, "iter_records", lambda profile: iter(fake))
    assert scheduler.recorded_seconds("smoke") == [660.0, 1200.0]
    missing, hours = scheduler.remaining("smoke", plans=[[("a", False), ("b", True)],
                                                         [("a", False), ("c", False)]])
    assert missing == ["a", "c"] and hours == pytest.approx(2 * 930 / 3600)


def test_grid_cost_for_the_overview(monkeypatch):
    from helpers import scheduler

    monkeypatch.setattr(scheduler, "recorded_seconds", lambda profile: [600.0, 1200.0])
    monkeypatch.setattr(scheduler, "remaining",
                        lambda profile, plans=None, seconds=None: (["a", "b", "c"], 3 * 900 / 3600))
    assert scheduler.grid_cost("smoke") == {
        "grid_runs": "2", "grid_hours": "0.5", "grid_minutes_per_run": "15",
        "grid_missing": "3", "grid_hours_left": "0.8"}
