"""``ssh://[user@]host[:port]``: the system OpenSSH client (``ssh``), driven as a user would drive it.

Host keys, identities, ssh-agent and ``~/.ssh/config`` (or ``--ssh-config FILE``, passed as ``ssh -F``) are
OpenSSH's own; on top of them every call sets only what a batch tool needs:

* ``BatchMode=yes``: never a password or passphrase prompt, never "accept this host key?". An unknown or
  changed host key is refused by ssh and explained in one line (how to verify and add it); there is no
  ``StrictHostKeyChecking=no``.
* One connection per bench: the first command started (the bench agent) is the ``ControlMaster`` on a socket
  in a private temp folder, and every copy rides on it (``ControlMaster=no``) instead of reconnecting.
  ``ControlPersist=no``: the master ends with the agent's session, so nothing outlives the bench (a
  ``ControlPersist`` in the user's config would keep it in the background).
* ``ServerAliveInterval=5``/``ServerAliveCountMax=3``: a dead link is noticed within ~15 s, even while the
  device computes and nothing else flows; ``ConnectTimeout=15`` for a device that never answers.

Files are copied with ``cat`` over the same connection (``mkdir -p DIR && cat > FILE``), so the device
needs a POSIX shell and nothing else: no sftp subsystem, no scp, no rsync.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import IO

from ..errors import UserError
from .transport import RemoteURL, Transport

OPTIONS = ("BatchMode=yes", "ConnectTimeout=15", "ServerAliveInterval=5", "ServerAliveCountMax=3")


class TransportError(UserError):
    """A transport command failed; ``lost`` when the link (not the device's command) is what failed."""

    def __init__(self, message: str, *, lost: bool = False, detail: str = "") -> None:
        super().__init__(message)
        self.lost = lost
        self.detail = detail or message


def remote_command(argv: list[str]) -> str:
    """The command line ssh hands to the device's shell (each argument quoted)."""
    return " ".join(shlex.quote(str(a)) for a in argv)


class SSHTransport(Transport):
    scheme = "ssh"

    def __init__(self, url: RemoteURL, *, ssh_config: str = "", **_) -> None:
        super().__init__(url)
        if shutil.which("ssh") is None:
            raise UserError(f"--remote {url}: the OpenSSH client `ssh` is not installed here "
                            "(apt-get install openssh-client)")
        if ssh_config and not Path(ssh_config).expanduser().is_file():
            raise UserError(f"--ssh-config {ssh_config}: no such file")
        self.ssh_config = str(Path(ssh_config).expanduser()) if ssh_config else ""
        # unix socket paths are short (108 bytes, ssh adds a 17-character suffix while it binds)
        base = tempfile.gettempdir()
        self._dir = tempfile.mkdtemp(prefix="efg-ssh-", dir=base if len(base) < 60 else "/tmp")
        self.control = os.path.join(self._dir, "c")
        self._master = False

    def argv(self, *, master: bool = False) -> list[str]:
        """``ssh`` with our options up to the destination; the command to run follows."""
        a = ["ssh"] + (["-F", self.ssh_config] if self.ssh_config else []) + ["-T"]
        for o in OPTIONS:
            a += ["-o", o]
        a += ["-o", f"ControlPath={self.control}", "-o", f"ControlMaster={'yes' if master else 'no'}"]
        if master:
            a += ["-o", "ControlPersist=no"]
        if self.url.port:
            a += ["-p", str(self.url.port)]
        if self.url.user:
            a += ["-l", self.url.user]
        return a + ["--", self.url.host]

    def start(self, argv: list[str]) -> subprocess.Popen:
        master, self._master = not self._master, True
        return subprocess.Popen(self.argv(master=master) + [remote_command(argv)], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def _ssh(self, command: str, *, stdin: IO[bytes] | bytes | None, stdout: IO[bytes] | None,
             timeout_s: float, what: str) -> bytes:
        kw: dict = {"input": stdin} if isinstance(stdin, bytes) else {"stdin": stdin if stdin else subprocess.DEVNULL}
        try:
            proc = subprocess.run(self.argv() + [command], stdout=stdout or subprocess.PIPE, stderr=subprocess.PIPE,
                                  timeout=timeout_s, **kw)
        except subprocess.TimeoutExpired:
            raise TransportError(f"{self.url}: {what} did not finish within {timeout_s:.0f} s (the device or the link "
                                 "stalled)", lost=True, detail=f"no answer within {timeout_s:.0f} s") from None
        err = proc.stderr.decode(errors="replace")
        if proc.returncode == 255 or proc.returncode < 0:
            why = self.explain(proc.returncode, err)
            raise TransportError(f"{self.url}: {what}: {why}", lost=True, detail=why)
        if proc.returncode != 0:
            last = err.strip().splitlines()[-1] if err.strip() else f"exit code {proc.returncode}"
            raise TransportError(f"{self.url}: {what} failed on the device ({last})", detail=last)
        return proc.stdout if stdout is None else b""

    def run(self, argv: list[str], *, stdin: bytes | None = None, timeout_s: float = 60.0) -> bytes:
        return self._ssh(remote_command(argv), stdin=stdin, stdout=None, timeout_s=timeout_s,
                         what=f"`{remote_command(argv)}`")

    def put(self, local: Path, remote: str, *, timeout_s: float = 600.0) -> None:
        folder = os.path.dirname(remote) or "."
        with open(local, "rb") as fh:
            self._ssh(f"mkdir -p {shlex.quote(folder)} && cat > {shlex.quote(remote)}", stdin=fh, stdout=None,
                      timeout_s=timeout_s, what=f"copying {Path(local).name} there")

    def get(self, remote: str, local: Path, *, timeout_s: float = 600.0) -> None:
        with open(local, "wb") as fh:
            self._ssh(f"cat {shlex.quote(remote)}", stdin=None, stdout=fh, timeout_s=timeout_s,
                      what=f"copying {os.path.basename(remote)} back")

    def lost(self, returncode: int | None) -> bool:
        return returncode is not None and (returncode == 255 or returncode < 0)

    def effective(self) -> dict[str, str]:
        """What ssh makes of the destination (``ssh -G``: real host name, port, known_hosts files)."""
        try:
            out = subprocess.run(self.argv()[:-2] + ["-G", self.url.host], capture_output=True, text=True,
                                 timeout=10).stdout
        except (OSError, subprocess.TimeoutExpired):
            return {}
        conf: dict[str, str] = {}
        for line in out.splitlines():
            key, _, value = line.partition(" ")
            conf.setdefault(key.lower(), value.strip())
        return conf

    def explain(self, returncode: int | None, stderr: str) -> str:
        lines = [ln.strip() for ln in stderr.splitlines() if ln.strip() and not ln.startswith("Warning: Permanently")]
        text = "\n".join(lines)
        if returncode is not None and returncode < 0:
            return f"the ssh client was killed by signal {-returncode}"
        if "Host key verification failed" in text or "HOST IDENTIFICATION HAS CHANGED" in text:
            conf = self.effective()
            host, port = conf.get("hostname", self.url.host), conf.get("port", str(self.url.port or 22))
            known = (conf.get("userknownhostsfile") or "~/.ssh/known_hosts").split()[0]
            scan = f"ssh-keyscan -p {port} {host} >> {known}"
            if "HOST IDENTIFICATION HAS CHANGED" in text:
                return (f"the host key of {host}:{port} CHANGED since it was added to {known} (a reinstalled "
                        f"device, or someone in between): check with the device, then `ssh-keygen -R "
                        f"'[{host}]:{port}' -f {known}` and add the new key (`{scan}`)")
            return (f"the host key of {host}:{port} is not in {known}, and bench never accepts an unknown key: "
                    f"compare its fingerprint (`ssh-keyscan -p {port} {host} | ssh-keygen -lf -`) with the device's "
                    f"own (`ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub` there), then add it: `{scan}`")
        if "Permission denied" in text:
            who = f"{self.url.user + '@' if self.url.user else ''}{self.url.host}"
            port = f"-p {self.url.port} " if self.url.port else ""
            return (f"{who} refused the login ({lines[-1]}); bench logs in with keys only (BatchMode, never a "
                    f"password): install your public key there (`ssh-copy-id {port}{who}`), load it into ssh-agent, "
                    "or name it with IdentityFile in --ssh-config")
        for sign in ("Could not resolve hostname", "Connection refused", "timed out", "No route to host",
                     "Network is unreachable"):
            if sign in text:
                return f"cannot reach the device ({next(ln for ln in lines if sign in ln)})"
        if lines:
            return lines[-1]
        return f"ssh exited with code {returncode}"

    def close(self) -> None:
        if os.path.exists(self.control):  # a master that outlived its session (it should not): end it
            try:
                subprocess.run(self.argv()[:-2] + ["-O", "exit", self.url.host], capture_output=True, timeout=5)
            except (OSError, subprocess.TimeoutExpired):
                pass
        shutil.rmtree(self._dir, ignore_errors=True)
