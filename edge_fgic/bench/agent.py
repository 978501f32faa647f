"""The device's end of ``bench --remote``: ``edge-fgic bench-agent [--dir BASE]``, started by the host over
the transport (:mod:`edge_fgic.remote`), speaking :mod:`edge_fgic.remote.protocol` on stdin/stdout.

It makes a private work folder under BASE (default: the device's temp folder), says hello (its edge-fgic
version, the protocol version, the machine record of :func:`.sysinfo.system_report` and the folder), then runs
the same worker as a local bench (:func:`.worker.run_in_process`) on each spec the host sends, the spec's paths
inside its folder. The folder goes when the host says bye, **and** when the host is gone: the end of stdin (the
connection dropped or the host was killed), SIGHUP, SIGTERM or SIGINT, or a write to the host that fails. A
running worker is killed first. Torch-free: it imports the worker, the machine record and the file helpers.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import IO, Any

from ..remote.protocol import PROTOCOL, agent_line


class Agent:
    def __init__(self, work: Path, out: IO[bytes]) -> None:
        self.work = work
        self.out = out
        self._lock = threading.Lock()
        self._worker: subprocess.Popen | None = None
        self._busy = threading.Event()
        self._done = False

    def send(self, msg: dict[str, Any]) -> None:
        with self._lock:
            try:
                self.out.write(agent_line(msg))
                self.out.flush()
            except (OSError, ValueError):  # the host is gone (SIGPIPE is ignored by Python: EPIPE lands here)
                self.finish()
                os._exit(1)

    def finish(self) -> None:
        """Kill a running worker and remove the work folder (idempotent; any thread, signal handlers too)."""
        self._done = True
        proc = self._worker
        if proc is not None and proc.poll() is None:
            try:
                proc.kill()
                proc.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                pass
        shutil.rmtree(self.work, ignore_errors=True)

    def on_signal(self, signum: int, _frame) -> None:
        self.finish()
        os._exit(128 + signum)

    def inside(self, rel: str) -> Path:
        """``rel`` in the work folder; a path that leaves it is refused."""
        p = (self.work / rel).resolve()
        if not p.is_relative_to(self.work.resolve()):
            raise ValueError(f"{rel}: outside the agent's folder")
        return p

    def measure(self, msg: dict[str, Any]) -> None:
        from ..fileio import sha256_file
        from .worker import run_in_process
        try:
            idx = int(msg["id"])
            spec = dict(msg["spec"])
            for key in ("artifact", "images", "logits", "result"):
                spec[key] = str(self.inside(spec[key]))
            env = {str(k): str(v) for k, v in (msg.get("env") or {}).items()}
            result = run_in_process(spec, self.work / f"spec-{idx}.json", float(msg.get("timeout_s") or 600),
                                    env, started=self._started)
        except Exception as exc:  # noqa: BLE001 - reported to the host, never a dead agent
            if not self._done:
                self.send({"error": f"{type(exc).__name__}: {exc}"})
            self._busy.clear()
            return
        finally:
            self._worker = None
        if self._done:
            return
        logits = Path(spec["logits"])
        ok = result.get("status") == "ok" and logits.exists()
        self.send({"id": idx, "result": result, "logits": logits.relative_to(self.work.resolve()).as_posix()
                   if ok else None, "logits_sha256": sha256_file(logits) if ok else None})
        self._busy.clear()

    def _started(self, proc: subprocess.Popen) -> None:
        self._worker = proc
        if self._done:  # the host left while the worker was starting
            proc.kill()


def machine_record() -> dict[str, Any]:
    from .sysinfo import system_report
    record = system_report()
    try:  # total memory, for the device line of the report (sysinfo's own field wins where it has one)
        pages, size = os.sysconf("SC_PHYS_PAGES"), os.sysconf("SC_PAGE_SIZE")
        record.setdefault("memory_mb", round(pages * size / 2**20))
    except (ValueError, OSError, AttributeError):
        pass
    return record


def serve(base: str = "", inp: IO[bytes] | None = None, out: IO[bytes] | None = None) -> int:
    """Run the agent until the host says bye or goes away; 0 on bye, 1 when the host vanished."""
    from .. import __version__
    from ..fileio import private_dir
    inp = inp or sys.stdin.buffer
    out = out or sys.stdout.buffer
    base = base or tempfile.gettempdir()
    try:
        work = private_dir(base, "edge-fgic-bench")  # also clears what a SIGKILLed agent left there
    except OSError as exc:
        out.write(agent_line({"error": f"{base}: cannot make the work folder ({exc.strerror}); "
                                       "pass a writable --remote-dir"}))
        out.flush()
        return 2
    agent = Agent(work, out)
    for sig in (signal.SIGHUP, signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, agent.on_signal)
    said_bye = False
    try:
        agent.send({"hello": "edge-fgic bench agent", "edge_fgic": __version__, "protocol": PROTOCOL,
                    "machine": machine_record(), "dir": str(work), "python": sys.executable})
        for line in inp:  # the host's messages; the end of stdin = the host is gone
            try:
                msg = json.loads(line)
            except ValueError:
                agent.send({"error": f"not a message: {line[:80]!r}"})
                continue
            op = msg.get("op")
            if op == "bye":
                said_bye = True
                break
            if op == "measure" and not agent._busy.is_set():
                agent._busy.set()
                threading.Thread(target=agent.measure, args=(msg,), daemon=True).start()
            else:
                agent.send({"error": f"unknown or concurrent op {op!r}"})
    finally:
        agent.finish()
    return 0 if said_bye else 1


def main(argv: list[str] | None = None) -> int:
    """``edge-fgic bench-agent [--dir BASE]`` (what the host runs on the device; not a command for people)."""
    import argparse
    parser = argparse.ArgumentParser(prog="edge-fgic bench-agent", description="The device's end of bench --remote.")
    parser.add_argument("--dir", default="", help="folder for the agent's work folder (default: $TMPDIR or /tmp)")
    return serve(parser.parse_args(sys.argv[1:] if argv is None else argv).dir)


if __name__ == "__main__":
    sys.exit(main())
