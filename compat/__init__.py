"""Data package: the compatibility matrix (``matrix.toml``). Installed as ``shapgov.compat``."""
