"""Put back the NumPy names that MXNet 1.9.1 reads and NumPy has since removed, before MXNet is imported.

MXNet 1.9.1 is the last MXNet (the project was archived in 2023). Its Python package binds NumPy
names at import time (`mxnet.numpy.utils`, `mxnet.numpy.fallback`, `mxnet.numpy_dispatch_protocol`) that NumPy 2.0 removed (the
constants `PZERO` ... `NaN`, `alltrue`, `round_`, ...), NumPy 2.4 removed (`in1d`, `msort`, `trapz`),
or NumPy 1.20 moved to numpy-financial (`mirr`, `npv`, ...), so `import mxnet` fails on NumPy 2
without them. Its wheel's metadata asks for numpy<2, yet with these names back it imports and runs
the zoo on NumPy 2, equal to PyTorch (the whole MXNet suite passes).

This module is the only place that touches NumPy's namespace. It adds a name only when NumPy lacks
it, with the meaning it had in NumPy 1.x, and never replaces one NumPy has.
"""
from __future__ import annotations

import numpy


def _in1d(ar1, ar2, assume_unique=False, invert=False, **kwargs):
    """NumPy 1.x's `in1d`: `isin` over the flattened first argument."""
    return numpy.isin(numpy.ravel(ar1), ar2, assume_unique=assume_unique, invert=invert, **kwargs)


def _msort(a):
    """NumPy 1.x's `msort`: sorted along the first axis."""
    return numpy.sort(a, axis=0)


def _moved_to_numpy_financial(name: str):
    def removed(*args, **kwargs):
        raise NotImplementedError(f"numpy.{name} left NumPy in 1.20 for the numpy-financial package; "
                                  f"MXNet 1.9.1 only re-exports the name (mxnet.numpy.{name})")

    removed.__name__ = name
    return removed


_REMOVED_IN_NUMPY_2 = {
    # constants and aliases listed in numpy/_expired_attrs_2_0.py
    "PZERO": 0.0, "NZERO": -0.0, "PINF": numpy.inf, "NINF": -numpy.inf, "NAN": numpy.nan, "NaN": numpy.nan,
    "Inf": numpy.inf, "Infinity": numpy.inf, "infty": numpy.inf,
    "alltrue": numpy.all, "sometrue": numpy.any, "round_": numpy.round,
    "product": numpy.prod, "cumproduct": numpy.cumprod,
    "float_": numpy.float64, "complex_": numpy.complex128, "cfloat": numpy.complex128,
    "singlecomplex": numpy.complex64, "longfloat": numpy.longdouble, "clongfloat": numpy.clongdouble,
    "longcomplex": numpy.clongdouble, "string_": numpy.bytes_, "unicode_": numpy.str_,
    # deprecated in 2.0, removed in 2.4
    "in1d": _in1d, "msort": _msort, "trapz": getattr(numpy, "trapezoid", None),
    # MXNet 1.9.1 still uses `numpy.bool`, which NumPy 1.24 removed and NumPy 2 brought back
    "bool": bool,
}
_FINANCIAL = ("fv", "ipmt", "irr", "mirr", "nper", "npv", "pmt", "ppmt", "pv", "rate")


def _missing(name: str) -> bool:
    # `name in __dict__`, not hasattr(): NumPy's module __getattr__ raises or warns for removed names.
    return name not in numpy.__dict__


for _name, _value in _REMOVED_IN_NUMPY_2.items():
    if _value is not None and _missing(_name):
        setattr(numpy, _name, _value)
for _name in _FINANCIAL:
    if _missing(_name):
        setattr(numpy, _name, _moved_to_numpy_financial(_name))
