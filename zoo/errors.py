"""The zoo's exceptions. Each one says what was expected and what came."""
from __future__ import annotations


class ZooError(Exception):
    """Base class of every error the zoo raises on purpose."""


class UnknownModelError(ZooError, KeyError):
    def __str__(self) -> str:  # KeyError would print the message quoted
        return str(self.args[0])


class FrameworkUnavailableError(ZooError, ImportError):
    pass


class InputError(ZooError, ValueError):
    """A batch of images or labels that a model cannot take: wrong type, dtype, values or count."""


class InputShapeError(InputError):
    pass


class WeightFileError(ZooError, ValueError):
    pass


class WeightMismatchError(ZooError, ValueError):
    pass
