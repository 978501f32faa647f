"""Export targets, one module each; the table that lists them is :mod:`edge_fgic.targets`.

``edge-fgic export`` builds an artifact, proves it in its own runtime, and writes its manifest
inside and beside it (:mod:`.exporter`, :mod:`edge_fgic.manifest`). Heavy converters are imported lazily
inside their target modules.

May import: everything below it (errors .. quant, bench): not camera, pipeline, cli.
"""

from ..targets import PRECISIONS, TARGETS, Target, get_target

__all__ = ["PRECISIONS", "TARGETS", "Target", "get_target"]
