"""One place per idea (DESIGN.md section 18): studies import downward only, nothing inside the package imports the
package root, every FIGURE name resolves, and the old module paths are the new modules."""

from __future__ import annotations

import ast
import json
import runpy
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "redshift_jax"
# Below studies/: these never import redshift_jax.studies (cli.py, above everything, and __init__.py may).
BELOW = ("models", "measures", "sweep", "train")


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> list[tuple[int, str]]:
    """(line, absolute module name) of every import in ``path``, function-level ones included."""
    package = _module_name(path).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package[:len(package) - node.level + 1] if node.level else []
            module = ".".join(base + ([node.module] if node.module else []))
            if node.module is None:  # from . import a, b: each name may be a module
                found += [(node.lineno, f"{module}.{alias.name}") for alias in node.names]
            else:
                found += [(node.lineno, module)] + [(node.lineno, f"{module}.{alias.name}") for alias in node.names]
    return found


def _package_files():
    return sorted(PACKAGE.rglob("*.py"))


def _below_studies(path: Path) -> bool:
    rel = path.relative_to(PACKAGE).parts
    if rel[0] in BELOW:
        return True
    return len(rel) == 1 and rel[0] not in ("__init__.py", "cli.py")


def test_nothing_below_studies_imports_studies():
    bad = [f"{path.relative_to(ROOT)}:{line} imports {name}" for path in _package_files() if _below_studies(path)
           for line, name in _imports(path) if name.split(".")[:2] == ["redshift_jax", "studies"]]
    assert not bad, "modules below studies/ import studies (DESIGN.md section 18):\n" + "\n".join(bad)


def test_no_module_imports_the_package_root():
    # ``from .. import __version__`` or ``import redshift_jax`` inside the package climbs to __init__ (which imports
    # everything); the version is in redshift_jax/_version.py. Docstring examples are not imports.
    bad = []
    for path in _package_files():
        if path == PACKAGE / "__init__.py":
            continue
        for line, name in _imports(path):
            if name in ("redshift_jax", "redshift_jax.__version__"):
                bad.append(f"{path.relative_to(ROOT)}:{line} imports {name}")
    assert not bad, "modules import the package root:\n" + "\n".join(bad)


def test_importing_a_module_below_studies_loads_no_study():
    # The same rule at run time, in a fresh interpreter: import every module below studies/, then no study (and
    # no cli) is loaded. ``import redshift_jax`` itself loads studies (the ds.rj accessor, rj.kinks), so the
    # modules are imported with the package's __init__ replaced by an empty module.
    names = [_module_name(p) for p in _package_files() if _below_studies(p) and p.name != "__main__.py"]
    code = f"""
import importlib, importlib.util, json, sys, types
root = types.ModuleType("redshift_jax")
root.__path__ = [{str(PACKAGE)!r}]
sys.modules["redshift_jax"] = root
failed = {{}}
for name in {names!r}:
    try:
        importlib.import_module(name)
    except ImportError as err:   # optional dependencies (transformers, ...) are not the point here
        failed[name] = str(err)
loaded = sorted(m for m in sys.modules if m.startswith(("redshift_jax.studies", "redshift_jax.cli")))
print(json.dumps({{"loaded": loaded, "failed": failed}}))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["loaded"] == [], result
    assert not [n for n, err in result["failed"].items() if "redshift_jax" in err], result["failed"]


def test_every_figure_name_resolves():
    from redshift_jax import studies

    sweep_figures = {runpy.run_path(str(f)).get("FIGURE", "auto") for f in sorted((ROOT / "sweeps").glob("*.py"))
                     if "FIGURE =" in f.read_text()}
    assert sweep_figures <= set(studies.FIGURES), sweep_figures - set(studies.FIGURES)
    for name, target in studies.FIGURES.items():
        module, function = target.split(":")
        assert "." not in module, target
        assert callable(studies.figure_function(name)), name


def test_unknown_figure_is_a_config_error():
    from redshift_jax import ConfigError, studies

    with pytest.raises(ConfigError, match="figure='nope' is unknown; allowed: auto, heatmaps"):
        studies.plot_result({}, "nope", "unused")


def test_old_paths_are_the_new_modules():
    import redshift_jax.kinks
    import redshift_jax.volume

    import redshift_jax as rj
    from redshift_jax import kinks, volume
    from redshift_jax.measures import kinks as kinks_algorithm
    from redshift_jax.measures import volume as volume_estimator
    from redshift_jax.studies import kinks as kinks_study

    assert rj.kinks is kinks is redshift_jax.kinks is kinks_study
    assert rj.volume is volume is redshift_jax.volume is volume_estimator
    # one copy of each function: rj.kinks re-exports the algorithm's own objects
    for name in kinks_algorithm.__all__:
        assert getattr(rj.kinks, name) is getattr(kinks_algorithm, name), name
    for name in ("count_1d_many", "expected_kinks", "plot_kinks", "holmes_settings", "ball_radius", "HOLMES_PRIORS"):
        assert hasattr(rj.kinks, name), name
    for name in ("log_volume", "network_cost", "network_log_volume", "star_radii", "DEFAULT_ALPHA", "WIDTHS"):
        assert hasattr(rj.volume, name), name
    assert rj.GPT2.__name__ == "GPT2" and rj.NNGP.__name__ == "NNGP"


def test_version_is_one_value():
    import redshift_jax as rj
    from redshift_jax._version import __version__

    assert rj.__version__ == __version__
    assert f'version = "{__version__}"' in (ROOT / "pyproject.toml").read_text()


def test_every_slow_list_entry_names_a_test():
    """tests/slow_tests.txt names tests by node id; a renamed test would silently leave the list (and join the fast
    tier), as three did until 2026-12-08. Each entry's file must define the test it names (a doctest entry: the
    module's function)."""
    entries = [line.strip() for line in (ROOT / "tests" / "slow_tests.txt").read_text().splitlines()
               if line.strip() and not line.startswith("#")]
    assert entries
    defined: dict[str, set] = {}   # each file parsed once
    for entry in entries:
        path, _, name = entry.partition("::")
        source = ROOT / path
        assert source.is_file(), entry
        if path not in defined:
            defined[path] = {n.name for n in ast.walk(ast.parse(source.read_text())) if isinstance(n, ast.FunctionDef)}
        name = name.split("[")[0].rsplit(".", 1)[-1]   # a parametrization, a doctest's dotted module path
        assert name in defined[path], f"{entry}: no test {name!r} in {path}"
