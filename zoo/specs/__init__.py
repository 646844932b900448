"""One module per family; importing this package registers every model."""
import importlib
import pkgutil

FAMILIES = tuple(sorted(info.name for info in pkgutil.iter_modules(__path__) if not info.name.startswith("_")))

for _family in FAMILIES:
    importlib.import_module(f"{__name__}.{_family}")
