"""What a device transport does, and the ``SCHEME://...`` URLs that name a device.

A transport runs a command on the device with its stdin/stdout as a byte stream (:meth:`Transport.start`:
the bench agent's channel), runs one-off commands (:meth:`Transport.run`) and copies single files
(:meth:`Transport.put` / :meth:`Transport.get`). Every failure it cannot recover from is a
:class:`~edge_fgic.errors.UserError` of one line that says what to do.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from ..errors import UserError

URL_FORMS = "ssh://[user@]host[:port] (host may be a Host alias of your ssh config)"


@dataclass(frozen=True)
class RemoteURL:
    scheme: str
    host: str
    user: str = ""
    port: int | None = None

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return (f"{self.scheme}://" + (f"{self.user}@" if self.user else "") + host
                + (f":{self.port}" if self.port else ""))


def parse_remote(url: str, schemes: tuple[str, ...] = ("ssh", "adb")) -> RemoteURL:
    """``ssh://user@host:port`` -> RemoteURL; anything else is one line saying what the form is."""
    text = url.strip()
    if "://" not in text:
        raise UserError(f"--remote {url}: not a device URL; use {URL_FORMS}")
    scheme = text.split("://", 1)[0].lower()
    if scheme not in schemes:
        raise UserError(f"--remote {url}: unknown scheme {scheme}://; use {URL_FORMS}")
    parts = urlsplit(text)
    if parts.password is not None:
        raise UserError(f"--remote {parts.scheme}://{parts.username}:***@{parts.hostname}: no passwords in the URL "
                        "(bench logs in with keys only, as `ssh -o BatchMode=yes`): install a key on the device "
                        "(ssh-copy-id) or load it into ssh-agent")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise UserError(f"--remote {url}: a device URL has no path; use {URL_FORMS} and --remote-dir DIR for the "
                        "device's work folder")
    try:
        port = parts.port
    except ValueError:
        raise UserError(f"--remote {url}: the port must be a number from 1 to 65535") from None
    host, user = parts.hostname or "", parts.username or ""
    if scheme == "adb":  # adb://SERIAL: the serial is what adb calls the device (case kept)
        host = parts.netloc
    if not host:
        raise UserError(f"--remote {url}: no host; use {URL_FORMS}")
    for what, value in (("host", host), ("user", user)):
        if value.startswith("-") or any(c.isspace() or c in "'\"\\;&|`$" for c in value):
            raise UserError(f"--remote {url}: the {what} {value!r} is not a plain name")
    if port == 0:
        raise UserError(f"--remote {url}: the port must be a number from 1 to 65535")
    return RemoteURL(scheme=scheme, host=host, user=user, port=port)


class Transport:
    """A way to reach one device. Subclasses implement the four methods below."""

    scheme = ""

    def __init__(self, url: RemoteURL, **options) -> None:
        self.url = url

    def describe(self) -> str:
        """The device as the report names it (the URL; never a secret)."""
        return str(self.url)

    def start(self, argv: list[str]) -> subprocess.Popen:
        """``argv`` running on the device, its stdin/stdout/stderr as pipes (bytes) of the returned process;
        the process ends when the device's command ends or the connection is lost."""
        raise NotImplementedError

    def run(self, argv: list[str], *, stdin: bytes | None = None, timeout_s: float = 60.0) -> bytes:
        """Run ``argv`` on the device, return its stdout; a failure is a UserError."""
        raise NotImplementedError

    def put(self, local: Path, remote: str, *, timeout_s: float = 600.0) -> None:
        """Copy the file ``local`` to the device path ``remote`` (its folder is created)."""
        raise NotImplementedError

    def get(self, remote: str, local: Path, *, timeout_s: float = 600.0) -> None:
        """Copy the device file ``remote`` to ``local``."""
        raise NotImplementedError

    def explain(self, returncode: int | None, stderr: str) -> str:
        """Why the transport's client stopped, in a few words for a one-line message."""
        return stderr.strip().splitlines()[-1] if stderr.strip() else f"exit code {returncode}"

    def lost(self, returncode: int | None) -> bool:
        """Did the client end because the link went (rather than the device's command ending)?"""
        return returncode is not None and returncode < 0

    def close(self) -> None:
        """Release what the transport holds on this machine (sockets, temp files)."""

    def __enter__(self) -> "Transport":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
