"""``rj.run_suite``: the suite store the CLI uses, from Python (issue 25 item 1)."""

import json

import numpy as np
import pytest

import redshift_jax as rj
from redshift_jax.errors import ConfigError, StoreError


def _parts(scales=(1.0, 4.0)):
    base = dict(resolution=8, measures=("lz",))
    return {"relu": rj.Sweep(model=rj.MLP(depth=1, width=4, activation="relu"),
                             axes={"weight_scale": list(scales), "seed": [0, 1]}, **base),
            "tanh net": rj.Sweep(model=rj.MLP(depth=1, width=4, activation="tanh"),
                                 axes={"weight_scale": list(scales), "seed": [0, 1]}, **base)}


@pytest.mark.product_compile
def test_run_suite_writes_resumes_and_loads(tmp_path):
    out = tmp_path / "suite"
    parts = _parts()
    first = rj.run_suite(parts, out=out, progress=False, figure="curves", claims={"a": "higher"})
    manifest = json.loads((out / "suite.json").read_text())
    assert manifest == {"figure": "curves", "parts": ["relu", "tanh net"], "claims": {"a": "higher"}}
    again = rj.run_suite(parts, out=out, resume=True, progress=False, figure="curves")
    loaded = rj.load_suite(out)
    memory = rj.run_suite(parts, progress=False)   # no folder: in memory, the same numbers
    for name in parts:
        for ds in (again[name], loaded[name], memory[name]):
            np.testing.assert_array_equal(ds["lz"].values, first[name]["lz"].values)
    assert list(loaded) == ["relu", "tanh net"] and loaded["relu"].rj.sweep == parts["relu"]
    with pytest.raises(StoreError, match="another run"):   # a finished part of another spec is not replaced
        rj.run_suite(_parts((1.0, 2.0)), out=out, resume=True, progress=False)


def test_run_suite_refuses_foreign_folders_and_bad_parts(tmp_path):
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    with pytest.raises(StoreError, match="left untouched"):
        rj.run_suite(_parts(), out=foreign, progress=False)
    assert (foreign / "notes.txt").read_text() == "keep me" and len(list(foreign.iterdir())) == 1
    for bad in ({}, {"a/b": _parts()["relu"]}, {"..": _parts()["relu"]}):
        with pytest.raises(ConfigError, match="run_suite"):
            rj.run_suite(bad, out=tmp_path / "x", progress=False)
    with pytest.raises(ConfigError, match="resume=True needs an out folder"):
        rj.run_suite(_parts(), resume=True, progress=False)
