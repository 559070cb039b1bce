"""The whole record at QUICK size, every entry through `redshift-jax figures --quick` (issue 24, point 5).

Not part of `make test` (it takes tens of minutes on 2 cores: every entry compiles its own sweeps); `make
test-record` runs it, and `.ci/run` calls that after `make test`. `tests/test_record.py` covers the command's
mechanics (resume, a changed sweep file, bad entries) on a stand-in sweep in seconds.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import redshift_jax as rj
from redshift_jax.cli import main
from redshift_jax.studies import record
from redshift_jax.sweep.files import load_result

pytestmark = pytest.mark.record

ROOT = Path(__file__).resolve().parents[1]


def test_every_entry_of_the_record_runs_at_quick_size_and_a_rerun_redoes_nothing(tmp_path, capsys):
    figures, results = tmp_path / "figures", tmp_path / "results"
    args = ["figures", "--quick", "--figures", str(figures), "--results", str(results),
            "--sweeps", str(ROOT / "sweeps"), "--no-progress"]
    assert main(args) == 0
    state = json.loads((results / "record.json").read_text())
    expected = {e.name for e in record.ENTRIES if e.sweep_file is None or (ROOT / "sweeps" / e.sweep_file).exists()}
    assert set(state["entries"]) == expected and state["size"] == "quick"
    for name, entry in state["entries"].items():
        assert entry["status"] == "done" and entry["figures"], name
        assert all(Path(p).exists() and Path(p).stat().st_size > 0 for p in entry["figures"]), name
        assert entry["command"], name
    capsys.readouterr()

    # Table 1's table and the training grids' datasets (make test runs cut-down copies of these through the CLI)
    text = (figures / "table1" / "table1.md").read_text()
    assert "| Component | Paper (Table 1) | Ours" in text
    assert text.count("\n| ") >= 3 * 10  # three measures x (header + 9 components)
    result, _, claims = load_result(results / "table1")
    assert len(result) == 9 and claims    # nine components (each part holds both priors)
    for name, kind, accuracy in (("fig8_modsum", "train_modsum", "test_accuracy"),
                                 ("fig9_cmnist", "train_cmnist", "digit_accuracy")):
        ds = rj.store.load_dataset(results / name)
        assert ds.attrs["kind"] == kind and not bool(ds.diverged.any()), name
        assert np.all((ds[accuracy].values >= 0) & (ds[accuracy].values <= 1)), name

    assert main(args) == 0   # resumable: a second run keeps every entry
    err = capsys.readouterr().err
    assert all(f"[{name}] done earlier" in err for name in expected)
