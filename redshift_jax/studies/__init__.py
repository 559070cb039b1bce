"""Studies: the paper's figures and tables, closed forms and reports, built on stored results (DESIGN.md section 18).

``_common`` holds what every study shares: the statistics (``mean_se``, ``spearman``) and the ``ds.rj`` xarray
accessor, registered when ``redshift_jax`` is imported::

    ds = rj.run_sweep(sweep)
    ds.rj.sweep              # the Sweep rebuilt from the stored spec
    ds.rj.measures           # the measures' variables, in the sweep's order
    mean, se = ds.rj.mean_se("seed")
    net = ds.rj.network(activation="tanh", depth=3, weight_scale=10.0, seed=2)   # params and field of one cell
"""

from ._common import Network, ResultAccessor, mean_se, spearman

__all__ = ["Network", "ResultAccessor", "mean_se", "spearman"]
