"""One runner per backend, sharing one interface (``Runner``): load an artifact, read its
manifest, and turn preprocessed NCHW float32 batches into float32 logits.

``export`` uses the runners for its round-trip check; ``bench``, ``predict`` and ``camera`` use
the same ones, so an artifact is always judged by the runtime it ships to. Which runner opens which
file is the target table's (:mod:`edge_fgic.targets`).

May import: errors, fileio, quiet, native, targets, manifest, models (the torch runner; not training).
"""

from .base import Runner, open_runner, runner_for

__all__ = ["Runner", "open_runner", "runner_for"]
