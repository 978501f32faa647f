"""The host's end of the bench agent protocol (:mod:`.protocol`): start the agent on the device, check its
version, copy files there once, have it run workers, bring their results back.

Every way this can fail is one line: the device cannot be reached or refuses the key (the transport's
explanation), the agent is missing or of another version, the device does not answer in time, or the
connection drops while something runs (``bench: lost the connection to URL while running X (why); nothing
was kept``). Closing the session (also after a failure) ends the agent, which removes its folder.
"""

from __future__ import annotations

import collections
import posixpath
import queue
import shlex
import subprocess
import threading
from pathlib import Path
from typing import Any

from .. import __version__
from ..errors import UserError
from ..fileio import sha256_file
from .protocol import AGENT_COMMAND, PROTOCOL, compatible, decode_agent_line, encode
from .transport import Transport

HELLO_TIMEOUT_S = 120.0   # connect + log in + start Python and numpy on a slow board + read the machine
REPLY_MARGIN_S = 60.0     # the agent enforces the worker's own timeout; this is for an agent that hangs
_EOF = object()


class DeviceSession:
    def __init__(self, transport: Transport, *, exe: str = "edge-fgic", base: str = "",
                 hello_timeout_s: float | None = None) -> None:
        self.transport = transport
        self.url = transport.describe()
        self.exe = shlex.split(exe or "edge-fgic")
        self.base = base
        self.hello_timeout_s = hello_timeout_s or HELLO_TIMEOUT_S
        self.proc: subprocess.Popen | None = None
        self.hello: dict[str, Any] = {}
        self.dir = ""
        self._messages: queue.Queue = queue.Queue()
        self._stderr: collections.deque[str] = collections.deque(maxlen=40)
        self._other: collections.deque[str] = collections.deque(maxlen=20)  # stdout lines that were not ours
        self._uploaded: dict[str, Path] = {}
        self._slots: dict[Path, str] = {}
        self._err_thread: threading.Thread | None = None

    # -- lifecycle
    def open(self) -> "DeviceSession":
        argv = [*self.exe, AGENT_COMMAND] + (["--dir", self.base] if self.base else [])
        self.proc = self.transport.start(argv)
        threading.Thread(target=self._read_stdout, daemon=True).start()
        self._err_thread = threading.Thread(target=self._read_stderr, daemon=True)
        self._err_thread.start()
        msg = self._next(self.hello_timeout_s, "waiting for its agent to start", starting=True)
        if "error" in msg:
            raise UserError(f"bench: {self.url}: the bench agent could not start: {msg['error']}")
        if msg.get("hello") != "edge-fgic bench agent":
            raise UserError(f"bench: {self.url}: `{shlex.join(argv)}` answered something other than the bench agent "
                            f"({str(msg)[:120]}); pass the device's edge-fgic command with --remote-exe")
        version, protocol = str(msg.get("edge_fgic", "?")), msg.get("protocol")
        if not compatible(__version__, version, protocol):
            raise UserError(f"bench: {self.url} runs edge-fgic {version} (agent protocol {protocol}); this machine "
                            f"runs {__version__} (protocol {PROTOCOL}): install the same version on the device "
                            f"(pip install \"edge-fgic=={__version__}\"), or point --remote-exe at such an install")
        self.hello, self.dir = msg, str(msg.get("dir") or "")
        if not self.dir.startswith("/"):
            raise UserError(f"bench: {self.url}: the agent named no work folder ({self.dir!r})")
        return self

    def close(self) -> None:
        """End the agent (it removes its folder), then the transport; safe to call twice and after a failure."""
        proc, self.proc = self.proc, None
        if proc is not None:
            if proc.poll() is None:
                try:
                    proc.stdin.write(encode({"op": "bye"}))
                    proc.stdin.flush()
                except OSError:
                    pass
            try:
                proc.stdin.close()
            except OSError:
                pass
            try:  # an agent removes its folder and exits; something that never said hello gets little patience
                proc.wait(timeout=20 if self.hello else 2)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.transport.close()

    def __enter__(self) -> "DeviceSession":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def record(self) -> dict[str, Any]:
        """The device as the report records it: its edge-fgic, protocol, agent command and machine."""
        return {"url": self.url, "edge_fgic": self.hello.get("edge_fgic"), "protocol": self.hello.get("protocol"),
                "exe": shlex.join(self.exe), "machine": self.hello.get("machine") or {}}

    # -- files
    def slot(self, folder: Path) -> str:
        """A sub-folder of the device's work folder for the artifacts of one local folder (names stay unique)."""
        key = Path(folder).resolve()
        return self._slots.setdefault(key, f"a{len(self._slots)}")

    def upload(self, local: Path, rel: str, *, what: str = "") -> str:
        """Copy ``local`` to ``rel`` in the work folder, once per session; returns ``rel``."""
        if rel in self._uploaded:
            return rel
        try:
            self.transport.put(Path(local), posixpath.join(self.dir, rel))
        except UserError as exc:
            raise self._lost(f"copying {Path(local).name}" + (f" for {what}" if what else ""),
                             getattr(exc, "detail", str(exc))) from None
        self._uploaded[rel] = Path(local)
        return rel

    # -- work
    def measure(self, spec: dict[str, Any], *, idx: int, env: dict[str, str], timeout_s: float, what: str,
                logits_to: Path) -> tuple[dict[str, Any], Path | None]:
        """Run the worker on ``spec`` (paths relative to the work folder) there; (result, local logits or None)."""
        self._send({"op": "measure", "id": idx, "spec": spec, "env": env, "timeout_s": timeout_s}, f"running {what}")
        while True:
            reply = self._next(timeout_s + REPLY_MARGIN_S, f"running {what}")
            if "error" in reply:
                raise UserError(f"bench: the agent on {self.url} could not run {what}: {reply['error']}")
            if reply.get("id") == idx:
                break
        logits = None
        if reply.get("logits"):
            logits = Path(logits_to)
            try:
                self.transport.get(posixpath.join(self.dir, reply["logits"]), logits)
            except UserError as exc:
                raise self._lost(f"copying back the logits of {what}", getattr(exc, "detail", str(exc))) from None
            if reply.get("logits_sha256") and sha256_file(logits) != reply["logits_sha256"]:
                size = logits.stat().st_size
                raise UserError(f"bench: the logits of {what} came back from {self.url} altered ({size} bytes, another "
                                "SHA-256): does a login script there print to stdout? (make it quiet for "
                                "non-interactive shells)")
        return reply.get("result") or {"status": "failed", "reason": "the agent sent no result"}, logits

    # -- the stream
    def _read_stdout(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        for line in self.proc.stdout:
            msg = decode_agent_line(line)
            if msg is None:
                self._other.append(line.decode(errors="replace").strip())
            else:
                self._messages.put(msg)
        self._messages.put(_EOF)

    def _read_stderr(self) -> None:
        assert self.proc is not None and self.proc.stderr is not None
        for line in self.proc.stderr:
            text = line.decode(errors="replace").strip()
            if text:
                self._stderr.append(text)

    def _send(self, msg: dict[str, Any], doing: str) -> None:
        try:
            self.proc.stdin.write(encode(msg))
            self.proc.stdin.flush()
        except (OSError, ValueError):
            self._next(30.0, doing)  # the agent's end: the reason comes with its EOF
            raise self._lost(doing, "the stream to the agent closed")

    def _next(self, timeout_s: float, doing: str, *, starting: bool = False) -> dict[str, Any]:
        try:
            msg = self._messages.get(timeout=timeout_s)
        except queue.Empty:
            raise UserError(f"bench: {self.url} did not answer within {timeout_s:g} s while {doing}"
                            + ("" if starting else "; nothing was kept")) from None
        if msg is not _EOF:
            return msg
        try:
            rc = self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            rc = None
        self._drain_stderr()
        err = "\n".join(self._stderr)
        if starting:
            raise UserError(self._not_started(rc, err))
        if self.transport.lost(rc):
            raise self._lost(doing, self.transport.explain(rc, err))
        last = self._stderr[-1] if self._stderr else f"exit code {rc}"
        raise UserError(f"bench: the agent on {self.url} stopped while {doing} ({last}); nothing was kept")

    def _drain_stderr(self) -> None:
        """Let the stderr reader take the client's last words (it ends with the process)."""
        if self._err_thread is not None:
            self._err_thread.join(timeout=2.0)

    def _lost(self, doing: str, why: str) -> UserError:
        return UserError(f"bench: lost the connection to {self.url} while {doing} ({why}); nothing was kept")

    def _not_started(self, rc: int | None, err: str) -> str:
        exe = shlex.join(self.exe)
        last = err.strip().splitlines()[-1] if err.strip() else (self._other[-1] if self._other else f"exit code {rc}")
        if self.transport.lost(rc):
            return f"bench: {self.url}: {self.transport.explain(rc, err)}"
        if rc == 127 or "not found" in err or "No such file" in err:
            return (f"bench: {self.url}: `{exe}` is not there ({last}); install edge-fgic on the device "
                    f"(pip install \"edge-fgic=={__version__}\") or pass its path with --remote-exe")
        if "No such command" in err:
            return (f"bench: {self.url}: `{exe}` has no {AGENT_COMMAND} command (an edge-fgic older than this one, "
                    f"{__version__}); install the same version on the device")
        return f"bench: {self.url}: the bench agent (`{exe} {AGENT_COMMAND}`) did not start ({last})"
