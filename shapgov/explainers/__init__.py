"""Stage 3, explain: each planned vertex explained in the game, by its explainer and the
numba kernels under :mod:`shapgov.explainers.kernels`."""
