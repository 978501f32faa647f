"""Devices reached over a transport: ``bench --remote ssh://user@host[:port]``.

A *transport* (:class:`.transport.Transport`) runs commands on a device and copies files to and from it;
:class:`.ssh.SSHTransport` drives the system OpenSSH client, so host keys, keys, agents and ``~/.ssh/config``
work exactly as they do for ``ssh``. :class:`.session.DeviceSession` is the host's end of the bench agent
protocol (:mod:`.protocol`); the device's end is :mod:`edge_fgic.bench.agent`, run by the device's own
edge-fgic install. A new kind of device is one more class in :data:`SCHEMES` (``adb://`` is planned).

May import: errors, fileio, the package's version (stdlib only otherwise; never bench, runtime or torch).
"""

from __future__ import annotations

from .transport import RemoteURL, Transport, parse_remote


def _schemes() -> dict[str, type[Transport]]:
    from .adb import ADBTransport
    from .ssh import SSHTransport
    return {"ssh": SSHTransport, "adb": ADBTransport}


def open_transport(url: str | RemoteURL, **options) -> Transport:
    """The transport for ``url`` (``ssh://user@host[:port]``), with the scheme's options (ssh: ``ssh_config``)."""
    parsed = url if isinstance(url, RemoteURL) else parse_remote(url, tuple(_schemes()))
    return _schemes()[parsed.scheme](parsed, **options)


def open_device(url: str, *, exe: str = "edge-fgic", base: str = "", ssh_config: str = "",
                hello_timeout_s: float | None = None):
    """A started :class:`.session.DeviceSession` on ``url`` (a context manager: closing it removes the
    device's work folder)."""
    from .session import DeviceSession
    transport = open_transport(url, ssh_config=ssh_config)
    session = DeviceSession(transport, exe=exe, base=base, hello_timeout_s=hello_timeout_s)
    try:
        session.open()
    except BaseException:
        session.close()
        raise
    return session


__all__ = ["RemoteURL", "Transport", "open_device", "open_transport", "parse_remote"]
