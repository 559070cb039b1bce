"""The README is the first visit: short, and every link in it leads somewhere (the docs site checks its own
links with ``mkdocs build --strict``, ``make docs``; the README is not part of the site)."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"


def test_readme_is_a_first_visit():
    assert len(README.read_text().splitlines()) < 330


def test_readme_links_resolve():
    text = README.read_text()
    targets = [t for t in re.findall(r"\]\(([^)\s]+)\)", text) if not re.match(r"[a-z]+:", t)]
    assert targets, "the README maps the docs"
    missing = [t for t in targets if not (ROOT / t.split("#", 1)[0]).exists()]
    assert not missing, f"README links to files that do not exist: {missing}"


def test_readme_example_runs():
    """The five-line example, as the README shows it."""
    block = re.search(r"## A random network in five lines\n\n```python\n(.*?)```", README.read_text(), re.S)
    assert block, "the README shows the five-line example"
    exec(compile(block.group(1), "README.md", "exec"), {})


def test_extension_guide_runs_model_measure_and_study(tmp_path):
    """docs/guide/extending.md: its three code blocks (a model, a measure, a study), each one file's worth, run in
    turn; then the study's table and figure are checked against the result they read."""
    import numpy as np

    text = (ROOT / "docs" / "guide" / "extending.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    assert len(blocks) == 3, "the guide shows a model, a measure and a study"
    namespace: dict = {}
    for i, block in enumerate(blocks):
        exec(compile(block, f"extending.md block {i + 1}", "exec"), namespace)
    ds, rows, rho = namespace["ds"], namespace["rows"], namespace["rho"]
    assert [r[0] for r in rows] == [1.0, 9.0] and -1.0 <= rho <= 1.0
    want = ds.fourier.sel(squash=True, frequency=9.0).values.astype(np.float64).mean()
    assert rows[1][2].startswith(f"{want:.3f}")
    net = namespace["net"]   # (bit for bit against a stored field: tests/test_accessor.py)
    assert net.model.squash and net.field.shape == (32, 32) and np.isfinite(net.field).all()
    namespace["plot_squash"](ds, tmp_path / "squash.png")
    assert (tmp_path / "squash.png").stat().st_size > 0
