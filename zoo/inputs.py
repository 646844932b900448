"""What input a model accepts, checked once at the model's edge (never inside `forward`/`call`)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from .errors import InputShapeError


@dataclass(frozen=True)
class InputSignature:
    """Channels and spatial sizes a built model accepts.

    `min_size` is the smallest height/width for which every feature map stays non-empty;
    `fixed_size` is set for networks whose flatten + dense head pins the input to one size.
    """

    in_channels: int
    min_size: int = 1
    fixed_size: int | None = None

    def describe(self, layout: str) -> str:
        size = f"{self.fixed_size}" if self.fixed_size else f">={self.min_size}"
        dims = {"NCHW": f"(batch, {self.in_channels}, H, W)", "NHWC": f"(batch, H, W, {self.in_channels})"}[layout]
        return f"{dims} with H and W {size}"

    def check(self, shape: Sequence[int | None], layout: str) -> None:
        """Raise InputShapeError unless `shape` fits; unknown (None) dimensions pass."""
        shape = tuple(shape)
        expected = self.describe(layout)
        if len(shape) != 4:
            raise InputShapeError(f"expected a 4-d {layout} batch {expected}, got shape {shape}")
        if layout == "NCHW":
            channels, height, width = shape[1], shape[2], shape[3]
        else:
            height, width, channels = shape[1], shape[2], shape[3]
        if channels is not None and channels != self.in_channels:
            hint = ""
            other = shape[3] if layout == "NCHW" else shape[1]
            if other == self.in_channels:
                wrong = "NHWC" if layout == "NCHW" else "NCHW"
                hint = f" (this looks like an {wrong} batch; this framework takes {layout})"
            raise InputShapeError(
                f"expected {self.in_channels} input channels, {layout} {expected}; got shape {shape}{hint}"
            )
        for label, size in (("height", height), ("width", width)):
            if size is None:
                continue
            if self.fixed_size is not None and size != self.fixed_size:
                raise InputShapeError(
                    f"this model takes only {self.fixed_size}x{self.fixed_size} images "
                    f"(its dense head is sized for it); got {label} {size} in shape {shape}"
                )
            if size < self.min_size:
                raise InputShapeError(
                    f"input {label} {size} is below this model's minimum of {self.min_size} "
                    f"(feature maps would vanish); got shape {shape}"
                )
