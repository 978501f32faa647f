"""The bench agent protocol: JSON messages, one per line, both ways over the transport's stream.

Host -> device (the agent's stdin): ``{"op": "measure", "id": N, "spec": {...}, "env": {...}, "timeout_s": T}``
(the worker spec of :mod:`edge_fgic.bench.worker`, its paths relative to the agent's folder) and
``{"op": "bye"}``. Device -> host (the agent's stdout), each line prefixed with :data:`PREFIX` so a chatty
login shell cannot be mistaken for the agent: first the hello
``{"hello": "edge-fgic bench agent", "edge_fgic": VERSION, "protocol": PROTOCOL, "machine": {...}, "dir": PATH}``,
then one ``{"id": N, "result": {...}, "logits": "logits-N.npy" | null}`` per measure (the host fetches the
logits with the transport), or ``{"error": "..."}``. End of the agent's stdin = the host is gone: the agent
removes its folder and exits.
"""

from __future__ import annotations

import json
from typing import Any

PROTOCOL = 1            # bump when a message or the worker's spec/result changes incompatibly
PREFIX = "@edge-fgic "  # every agent line starts with it
AGENT_COMMAND = "bench-agent"  # the hidden edge-fgic subcommand that runs the agent


def encode(msg: dict[str, Any]) -> bytes:
    return (json.dumps(msg, default=str) + "\n").encode()


def agent_line(msg: dict[str, Any]) -> bytes:
    return PREFIX.encode() + encode(msg)


def decode_agent_line(line: bytes) -> dict[str, Any] | None:
    """An agent message, or None for a line that is not one (a login banner, a shell's noise)."""
    text = line.decode(errors="replace").strip()
    if not text.startswith(PREFIX.strip()):
        return None
    try:
        msg = json.loads(text[len(PREFIX.strip()):])
    except ValueError:
        return None
    return msg if isinstance(msg, dict) else None


def compatible(host_version: str, device_version: str, device_protocol: Any) -> bool:
    """Same protocol, and the same major.minor edge-fgic (a patch release never changes what a worker does)."""
    def mm(v: str) -> tuple[str, ...]:
        return tuple(str(v).split(".")[:2])
    return device_protocol == PROTOCOL and mm(host_version) == mm(device_version)
