"""The package version, in a module of its own so that modules inside the package read it without importing the
package root (``redshift_jax/__init__.py`` re-exports it as ``redshift_jax.__version__``)."""

__version__ = "0.2.0"
