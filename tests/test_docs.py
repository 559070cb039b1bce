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
