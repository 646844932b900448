"""MXNet 1.9.1 still uses `numpy.bool`, an alias NumPy 1.24 removed; restore it before MXNet is imported.

This module is the only place that touches NumPy's namespace, and it only adds the alias back
(with its original meaning, the built-in `bool`) when it is missing.
"""
import numpy

if "bool" not in numpy.__dict__:  # hasattr() would trip NumPy's own deprecation warning
    numpy.bool = bool
