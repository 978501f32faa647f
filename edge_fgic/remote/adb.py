"""``adb://SERIAL``: an Android phone over adb. Planned, not built: this project has no Android SDK to test it.

What it would take (README, "Benchmark on a device over SSH"): ``adb -s SERIAL push`` of the .tflite (and its
sidecar) and of LiteRT's prebuilt ``benchmark_model`` binary for arm64 to ``/data/local/tmp``, ``adb shell``
to run it (``--graph=... --num_threads=N --use_xnnpack=true``) and parsing its ``Inference timings in us``
lines into a bench row. A phone runs no Python, so accuracy would need the logits too: a small
``--output_filepath`` run over the preprocessed images, or the Android demo's own runner.
"""

from __future__ import annotations

from ..errors import UserError
from .transport import RemoteURL, Transport


class ADBTransport(Transport):
    scheme = "adb"

    def __init__(self, url: RemoteURL, **_) -> None:
        raise UserError(f"--remote {url}: adb:// (Android) is not built yet: it would push the .tflite and LiteRT's "
                        "prebuilt benchmark_model to the phone with adb and parse its timings (README: Benchmark on a "
                        "device over SSH); use ssh://user@host[:port] for Linux devices")
