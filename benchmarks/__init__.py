"""`make bench`: the redshift_jax performance table (DESIGN.md section 8). Entry point: benchmarks/run.py."""
