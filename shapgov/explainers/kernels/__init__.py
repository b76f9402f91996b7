"""Numba kernels: private functions over arrays, behind validating public wrappers."""
