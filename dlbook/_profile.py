# HAND-WRITTEN: not generated from the chapters. `tools lib` leaves this file alone;
# edit it here. The contract it implements is documented in docs/execution.md.
"""The execution profile: ``full`` runs the book as written, ``smoke`` runs it small.

The book's build sets ``DLBOOK_PROFILE`` for every kernel (``tools.kernel_env``).
Chapter code never looks at it: the library does, in the few places that decide how much
work a run does (the Trainer's epochs and batches, a DataModule's examples and image
size), so that the code a reader sees is exactly the code they would type::

    from dlbook import _profile

    max_epochs = _profile.cap(max_epochs, _profile.SMOKE.max_epochs)
    resize = _profile.smoke_scale(resize, min(resize, _profile.SMOKE.image_size))

Interactive use (a reader's Jupyter, Colab) has no ``DLBOOK_PROFILE`` and gets ``full``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

PROFILES = ("full", "smoke")
VARIABLE = "DLBOOK_PROFILE"


@dataclass(frozen=True)
class Smoke:
    """Caps the smoke profile puts on a run (the full profile has none).

    Sized so that the whole book runs on 2 CPU cores in CI: every chapter's training
    loop becomes a few seconds of work that still exercises every line of its code.
    """

    max_epochs: int = 1  # epochs of any training loop
    max_batches: int = 8  # training batches per epoch (and validation batches)
    max_examples: int = 1024  # examples a DataModule keeps from each split
    image_size: int = 32  # smallest side a smoke resize shrinks images to
    image_fraction: float = 0.3  # smoke resizes keep this fraction of a larger side
    max_steps: int = 50  # iterations of hand-written optimisation loops


SMOKE = Smoke()


def profile() -> str:
    """``full`` or ``smoke``, from ``DLBOOK_PROFILE`` (``full`` when unset).

    ``auto`` means ``full`` where CUDA is available and ``smoke`` elsewhere.
    """
    value = os.environ.get(VARIABLE, "").strip().lower() or "full"
    if value == "auto":
        try:
            import torch
        except ImportError:
            return "smoke"
        return "full" if torch.cuda.is_available() else "smoke"
    if value not in PROFILES:
        raise ValueError(f"{VARIABLE}={value!r}: expected full, smoke or auto")
    return value


def is_smoke() -> bool:
    """True when running under the smoke profile."""
    return profile() == "smoke"


def smoke_scale(full_value, smoke_value):
    """``smoke_value`` under the smoke profile, else ``full_value``."""
    return smoke_value if is_smoke() else full_value


def cap(value, limit):
    """``min(value, limit)`` under the smoke profile, else ``value`` (None stays None)."""
    if value is None or not is_smoke():
        return value
    return min(value, limit)


def smoke_image_size(side: int) -> int:
    """The image side to use for a requested ``side``: unchanged under the full profile.

    Under the smoke profile a side larger than ``SMOKE.image_size`` shrinks to
    ``SMOKE.image_fraction`` of itself, but never below ``SMOKE.image_size``: 224 becomes
    67 (still large enough for AlexNet's strides and pools), 96 becomes 32, 28 stays 28.
    """
    if not is_smoke():
        return side
    return min(side, max(SMOKE.image_size, round(SMOKE.image_fraction * side)))


def limits() -> Smoke | None:
    """The caps in force: :data:`SMOKE` under the smoke profile, else None."""
    return SMOKE if is_smoke() else None
