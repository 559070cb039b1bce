"""`redshift-jax figures`: the record of every figure, resumable like a suite (issue 24, DESIGN.md section 22).

The full record at QUICK size takes minutes, so the run here uses the calibration report and a tiny stand-in sweep
file in a temporary sweeps folder; every real entry's sweep file is loaded at every size (cheap) so a broken file
fails here, not an hour into `make figures`.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from redshift_jax.cli import SIZES, load_sweep_file, main
from redshift_jax.errors import ConfigError, StoreError
from redshift_jax.studies import record

ROOT = Path(__file__).resolve().parents[1]

TINY = '''
import redshift_jax as rj
FIGURE = "gallery"
def make(scale):
    return rj.Sweep(model=rj.MLP(depth=1, width=8), axes={"activation": ["relu", "tanh"],
                    "weight_scale": [1.0, scale], "seed": [0]}, resolution=16, measures=("fourier_dct", "lz"),
                    keep_values=True, name="tiny")
SWEEP = LAPTOP = QUICK = make(SCALE)
'''


@pytest.mark.parametrize("entry", [e for e in record.ENTRIES if e.sweep_file], ids=lambda e: e.name)
def test_every_entry_loads_at_every_size(entry):
    for size in SIZES:
        target, figure, _ = load_sweep_file(ROOT / "sweeps" / entry.sweep_file, size)
        assert target is not None and figure


def test_record_runs_resumes_and_notices_a_changed_sweep(tmp_path, capsys):
    sweeps = tmp_path / "sweeps"
    sweeps.mkdir()
    (sweeps / "fig3_examples.py").write_text(TINY.replace("SCALE", "4.0"))
    figures, results = tmp_path / "figures", tmp_path / "results"
    args = ["figures", "--quick", "--only", "calibration,fig3_examples", "--figures", str(figures),
            "--results", str(results), "--sweeps", str(sweeps), "--no-progress"]
    assert main(args) == 0
    state = json.loads((results / "record.json").read_text())
    assert set(state["entries"]) == {"calibration", "fig3_examples"} and state["size"] == "quick"
    for name, entry in state["entries"].items():
        assert entry["status"] == "done" and entry["seconds"] >= 0 and entry["figures"]
        assert all(Path(p).exists() for p in entry["figures"]), name
    assert "--quick" in state["entries"]["fig3_examples"]["command"]
    assert (figures / "fig3_examples" / "gallery.png").exists()
    assert (figures / "calibration" / "calibration.md").read_text().count("| noise |") == 1
    capsys.readouterr()

    assert main(args) == 0  # nothing to redo
    err = capsys.readouterr().err
    assert "[calibration] done earlier" in err and "[fig3_examples] done earlier" in err

    (figures / "fig3_examples" / "gallery.png").unlink()  # a lost figure is drawn again from the stored result
    assert main(args) == 0
    assert "[fig3_examples] F3" in capsys.readouterr().err and (figures / "fig3_examples" / "gallery.png").exists()

    (sweeps / "fig3_examples.py").write_text(TINY.replace("SCALE", "8.0"))  # the sweep file changed
    assert main(args) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert main(args + ["--overwrite"]) == 0
    state = json.loads((results / "record.json").read_text())
    assert "8.0" not in state["entries"]["fig3_examples"]["spec"]  # a digest, recorded anew
    with pytest.raises(StoreError, match="quick record"):
        record.run_record(figures, results, size="laptop", only=["calibration"], sweeps_dir=sweeps, log=lambda t: 0)


def test_bad_entries_and_listing(tmp_path, capsys):
    with pytest.raises(ConfigError, match=r"--only nope unknown; allowed: calibration, fig3_examples"):
        record.run_record(tmp_path / "f", tmp_path / "r", only=["nope"], log=lambda t: 0)
    assert main(["figures", "--list"]) == 0
    out = capsys.readouterr().out
    assert all(e.name in out for e in record.ENTRIES)
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "record.json").write_text("{broken")
    with pytest.raises(StoreError, match="damaged"):
        record.run_record(tmp_path / "f", tmp_path / "r", only=["calibration"], log=lambda t: 0)
