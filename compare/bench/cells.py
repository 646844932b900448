"""The plan of a run: every cell, the frameworks of one (model, knobs, batch size, mode) side by side, and
the names a cell goes by."""
from __future__ import annotations

import itertools
from typing import Sequence

import zoo
from zoo.contract import BenchCell

from ..knobs import input_size_for, knob_label


def knobs_of(record: dict) -> dict:
    """The family knobs of a cell (its `overrides`) or of a record (its `knobs`); {} for the canonical
    configuration, and for results written before knobs were recorded."""
    return record.get("knobs", record.get("overrides")) or {}


def cell_key(record: dict) -> tuple:
    """Which cell a planned cell or a results record is (`BenchCell.key`), from files of every age."""
    return BenchCell.from_json(record).key


def cell_label(cell: dict) -> str:
    """'densenet121 [memory_efficient=True] torch train b8 (reference)' for progress lines."""
    knobs = knob_label(knobs_of(cell))
    label = f"{cell['model']}{f' [{knobs}]' if knobs else ''} {cell['framework']} {cell['mode']} b{cell['batch_size']}"
    return label + (" (reference)" if cell["implementation"] == "reference" else "")


def plan_cells(models: list[str], frameworks: list[str], batch_sizes: list[int], modes: list[str], *,
               device: str = "auto", input_size: int | None = None, compile: bool = False, amp: str = "auto",
               channels_last: str = "auto", reference: bool = False, min_round_s: float = 0.5,
               warmup_s: float = 0.2, threads: int | None = None,
               variants: Sequence[dict] | None = None) -> list[dict]:
    """Every cell, grouped so that the frameworks of one (model, knobs, batch size, mode) are adjacent.

    `variants` are the knob combinations (override dicts) to build each model with, default the canonical
    configuration only. With `reference`, each framework's backend is imported here to look up its own
    implementations; those have none of the zoo's knobs, so they are timed once, beside the first variant.
    Each cell in its JSON form (`BenchCell.to_json`), the form the workers and the records take."""
    cells = []
    variants = [dict(v) for v in variants] if variants else [{}]
    for model in models:
        spec = zoo.get_spec(model)
        # A knob may change the size the model is built for (LeNet's image_size); references have no knobs.
        sizes = [input_size_for(model, input_size, overrides) for overrides in variants]
        for batch in batch_sizes:
            for mode in modes:
                for index, overrides in enumerate(variants):
                    implementations = ["zoo", "reference"] if reference and index == 0 else ["zoo"]
                    for implementation, framework in itertools.product(implementations, frameworks):
                        size = sizes[index] if implementation == "zoo" else input_size_for(model, input_size)
                        ref = variant = None
                        if implementation == "reference":
                            backend = zoo.backend(framework)
                            ref = backend.reference_name(model)
                            if ref is None:
                                continue
                            variant = backend.reference_variant(model)
                        cells.append(BenchCell(
                            model=model, family=spec.family, framework=framework,
                            implementation=implementation, reference_name=ref, reference_variant=variant,
                            overrides=tuple(overrides.items()) if implementation == "zoo" else (),
                            mode=mode, batch_size=batch, input_size=size, num_classes=spec.num_classes,
                            device_requested=device, compile=compile, amp=amp, channels_last=channels_last,
                            min_round_s=min_round_s, warmup_s=warmup_s, threads_requested=threads,
                        ).to_json())
    return cells
