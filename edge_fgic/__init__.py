"""edge-fgic: a fine-grained image classifier from GPU training to edge devices.

The package is layered; every import points down (tests/test_layers.py holds it):

1. ``errors`` (UserError), then ``fileio``, ``quiet``, ``progress``, ``utils``, ``timing``; ``native``
   (child processes for native code), ``targets`` (the table of export targets and runtimes) and ``remote``
   (devices over ssh: the transport and the host's end of bench's agent protocol)
2. ``data`` (dataset registry, readers, transforms) and ``manifest`` (what an artifact is and how to feed it)
3. ``models`` (factory, checkpoints, weights, the NNCF-quantized model)
4. ``runtime`` (one runner per backend) and ``training`` (the loop, distillation, evaluation)
5. ``quant`` (the quantize stage), ``bench`` (the harness), ``predict``
6. ``export`` (one module per target), ``camera``
7. ``pipeline`` (all stages, resumable), ``doctor``
8. ``render``, ``cli_support``, then ``cli`` (the typer shell: flags -> config -> run_x -> render)
"""

__version__ = "0.1.0"
