"""Export targets (one module each) and the table that lists them (:mod:`.targets`).

``edge-fgic export`` builds an artifact, proves it in its own runtime, and writes its manifest
inside and beside it (:mod:`.exporter`, :mod:`.manifest`). Heavy converters are imported lazily
inside their target modules.
"""

from .targets import PRECISIONS, TARGETS, Target, get_target

__all__ = ["PRECISIONS", "TARGETS", "Target", "get_target"]
