"""``bench --remote ssh://...`` against a real OpenSSH server that this module starts on localhost (its own host
key, a generated user key, no passwords), the device side being the torch-free install of the wheel
(``slim_venv``): the URL parser, refusals in one line (unknown host key, another edge-fgic version, a missing
agent, a device that never answers), the same top-1 as a local bench, rows labelled with the device's machine,
and a dropped connection mid-run that leaves nothing on either side."""

from __future__ import annotations

import getpass
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from edge_fgic.cli import app
from edge_fgic.errors import UserError
from edge_fgic.remote import open_device, open_transport, parse_remote
from edge_fgic.remote.ssh import SSHTransport

SSHD = Path("/usr/sbin/sshd")
needs_sshd = pytest.mark.skipif(not SSHD.exists() or shutil.which("ssh") is None or shutil.which("ssh-keygen") is None,
                                reason="apt-get install openssh-server (make test installs it as root)")
runner = CliRunner()
DEV_EXE = str(Path(sys.executable).with_name("edge-fgic"))  # the dev venv's, for the tests that need no slim install


# -- the URL and the options (no server)

def test_parse_remote_forms_and_refusals():
    u = parse_remote("ssh://pi@jetson.local:2222")
    assert (u.scheme, u.user, u.host, u.port, str(u)) == ("ssh", "pi", "jetson.local", 2222, "ssh://pi@jetson.local:2222")
    assert parse_remote("ssh://my-board") == parse_remote("SSH://my-board/")  # a Host alias of ~/.ssh/config
    assert str(parse_remote("ssh://root@[::1]:22")) == "ssh://root@[::1]:22"
    assert parse_remote("adb://R58M12ABCDE").host == "R58M12ABCDE"
    for bad, words in [("jetson.local", "not a device URL"), ("http://x", "unknown scheme"),
                       ("ssh://u:secret@x", "no passwords"), ("ssh://x/home/u", "no path"),
                       ("ssh://x:99999", "port"), ("ssh://-oProxyCommand=x", "not a plain name"),
                       ("ssh://", "no host")]:
        with pytest.raises(UserError, match=words) as exc:
            parse_remote(bad)
        assert "\n" not in str(exc.value) and "secret" not in str(exc.value)


def test_adb_is_one_line_saying_it_is_not_built_yet():
    with pytest.raises(UserError) as exc:
        open_transport("adb://R58M12ABCDE")
    assert "not built yet" in str(exc.value) and "benchmark_model" in str(exc.value) and "\n" not in str(exc.value)


def test_ssh_is_batch_mode_one_connection_and_never_skips_host_key_checks(tmp_path):
    cfg = tmp_path / "ssh_config"
    cfg.write_text("Host *\n")
    t = SSHTransport(parse_remote("ssh://pi@board:2200"), ssh_config=str(cfg))
    try:
        master, other = " ".join(t.argv(master=True)), " ".join(t.argv())
        for o in ("BatchMode=yes", "ServerAliveInterval=5", "ServerAliveCountMax=3", f"ControlPath={t.control}"):
            assert o in master and o in other
        assert "ControlMaster=yes" in master and "ControlPersist=no" in master and "ControlMaster=no" in other
        assert f"-F {cfg}" in master and "-p 2200 -l pi -- board" in master
        assert "StrictHostKeyChecking" not in master + other
        assert Path(t.control).parent.is_dir()
    finally:
        t.close()
    assert not Path(t.control).parent.exists()


# -- a real sshd on localhost

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for_banner(port: int, proc: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"sshd exited: {log.read_text()[-2000:]}"
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                if s.recv(64).startswith(b"SSH-2.0"):
                    return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"sshd did not answer on port {port}: {log.read_text()[-2000:]}")


@pytest.fixture(scope="session")
def sshd(tmp_path_factory):
    """A real OpenSSH server on 127.0.0.1 with its own host key, one generated user key, keys only. Yields a dict:
    ``port``, ``user``, ``config`` (an ssh config with the key and the host key in its known_hosts) and ``url``."""
    if not SSHD.exists() or shutil.which("ssh-keygen") is None:
        pytest.skip("apt-get install openssh-server (make test installs it as root)")
    d = tmp_path_factory.mktemp("sshd")
    user, port = getpass.getuser(), _free_port()
    for name in ("host_ed25519", "id_ed25519"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", str(d / name)], check=True)
    shutil.copy(d / "id_ed25519.pub", d / "authorized_keys")
    (d / "sshd_config").write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {d / 'host_ed25519'}\nPidFile {d / 'sshd.pid'}\n"
        f"AuthorizedKeysFile {d / 'authorized_keys'}\nAllowUsers {user}\nPubkeyAuthentication yes\n"
        "PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\n"
        "PermitRootLogin prohibit-password\n"  # CI runs as root
        "StrictModes no\n"  # the key files sit under the world-writable /tmp
        "LogLevel VERBOSE\n")
    host_key = (d / "host_ed25519.pub").read_text().split()
    (d / "known_hosts").write_text(f"[127.0.0.1]:{port} {host_key[0]} {host_key[1]}\n")
    (d / "empty_known_hosts").write_text("")
    common = (f"    User {user}\n    IdentityFile {d / 'id_ed25519'}\n    IdentitiesOnly yes\n    IdentityAgent none\n"
              "    GlobalKnownHostsFile /dev/null\n    LogLevel ERROR\n")
    (d / "ssh_config").write_text(f"Host *\n{common}    UserKnownHostsFile {d / 'known_hosts'}\n")
    (d / "ssh_config_unknown_host").write_text(f"Host *\n{common}    UserKnownHostsFile {d / 'empty_known_hosts'}\n")
    if os.geteuid() == 0:
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege separation folder (as Debian's unit)
    log = d / "sshd.log"
    with open(log, "wb") as fh:
        proc = subprocess.Popen([str(SSHD), "-D", "-e", "-f", str(d / "sshd_config")], stdout=fh, stderr=fh)
    try:
        _wait_for_banner(port, proc, log)
        yield {"port": port, "user": user, "config": str(d / "ssh_config"), "url": f"ssh://{user}@127.0.0.1:{port}",
               "unknown_host_config": str(d / "ssh_config_unknown_host"), "known_hosts": d / "known_hosts",
               "dir": d, "log": log}
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _one_line(exc: pytest.ExceptionInfo) -> str:
    text = str(exc.value)
    assert "\n" not in text and "Traceback" not in text, text
    return text


@needs_sshd
def test_an_unknown_host_key_is_refused_in_one_line(sshd, tmp_path):
    with pytest.raises(UserError) as exc:
        open_device(sshd["url"], exe=DEV_EXE, base=str(tmp_path), ssh_config=sshd["unknown_host_config"])
    line = _one_line(exc)
    assert "not in" in line and f"ssh-keyscan -p {sshd['port']} 127.0.0.1 >>" in line, line
    assert (sshd["dir"] / "empty_known_hosts").read_text() == ""  # nothing accepted behind the user's back
    assert not list(tmp_path.iterdir())


@needs_sshd
def test_files_go_over_one_multiplexed_connection(sshd, tmp_path):
    t = open_transport(sshd["url"], ssh_config=sshd["config"])
    try:
        master = t.start(["cat"])  # the first command is the connection's master
        deadline = time.monotonic() + 20
        while not Path(t.control).exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        check = subprocess.run(t.argv()[:-2] + ["-O", "check", sshd["user"] + "@127.0.0.1"], capture_output=True,
                               text=True)
        assert check.returncode == 0 and "Master running" in check.stderr, check.stderr
        src = tmp_path / "a b.bin"
        src.write_bytes(bytes(range(256)) * 100)
        t.put(src, str(tmp_path / "there" / "sub" / "a b.bin"))
        t.get(str(tmp_path / "there" / "sub" / "a b.bin"), tmp_path / "back.bin")
        assert (tmp_path / "back.bin").read_bytes() == src.read_bytes()
        assert t.run(["echo", "it's here"]).decode().strip() == "it's here"
        master.stdin.close()
        assert master.wait(timeout=20) == 0
    finally:
        t.close()


@needs_sshd
def test_the_agent_says_hello_with_its_machine_and_removes_its_folder(sshd, tmp_path):
    base = tmp_path / "device-tmp"
    with open_device(sshd["url"], exe=DEV_EXE, base=str(base), ssh_config=sshd["config"]) as dev:
        rec = dev.record()
        assert rec["url"] == sshd["url"] and rec["protocol"] == 1 and rec["machine"]["cpu"]["isa"] is not None
        assert Path(dev.dir).parent == base and Path(dev.dir).is_dir()
    assert list(base.iterdir()) == []


@needs_sshd
def test_the_agent_removes_its_folder_when_the_connection_drops(sshd, tmp_path):
    base = tmp_path / "device-tmp"
    dev = open_device(sshd["url"], exe=DEV_EXE, base=str(base), ssh_config=sshd["config"])
    try:
        assert Path(dev.dir).is_dir()
        os.kill(dev.proc.pid, signal.SIGKILL)  # the ssh client (the connection's master) dies
        _wait_empty(base)
    finally:
        dev.close()


def _wait_empty(base: Path, seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while list(base.iterdir()) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert list(base.iterdir()) == [], f"left on the device: {list(base.iterdir())}"


def _fake_exe(path: Path, body: str) -> str:
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)
    return str(path)


@needs_sshd
def test_another_edge_fgic_version_or_no_agent_is_refused_in_one_line(sshd, tmp_path):
    old = _fake_exe(tmp_path / "old-edge-fgic", 'echo \'@edge-fgic {"hello": "edge-fgic bench agent", '
                    '"edge_fgic": "0.0.1", "protocol": 0, "machine": {}, "dir": "/tmp/x"}\'\ncat >/dev/null\n')
    with pytest.raises(UserError) as exc:
        open_device(sshd["url"], exe=old, ssh_config=sshd["config"])
    line = _one_line(exc)
    assert "runs edge-fgic 0.0.1 (agent protocol 0)" in line and "install the same version" in line, line
    with pytest.raises(UserError) as exc:
        open_device(sshd["url"], exe=str(tmp_path / "no" / "edge-fgic"), ssh_config=sshd["config"])
    assert "is not there" in _one_line(exc) and "--remote-exe" in str(exc.value)


@needs_sshd
def test_a_device_that_never_answers_is_one_line(sshd, tmp_path):
    mute = _fake_exe(tmp_path / "mute", "exec sleep 60\n")
    t0 = time.monotonic()
    with pytest.raises(UserError) as exc:
        open_device(sshd["url"], exe=mute, ssh_config=sshd["config"], hello_timeout_s=1.5)
    assert "did not answer within 1.5 s" in _one_line(exc)
    assert time.monotonic() - t0 < 30


# -- bench --remote end to end, the device side being the slim (torch-free) install

@pytest.fixture(scope="module")
def device_exe(slim_venv) -> str:
    return str(slim_venv / "bin" / "edge-fgic")


def _bench_args(exports: Path, out: Path, *extra: str) -> list[str]:
    return ["bench", str(exports), "--split", "val", "--runs", "10", "--batch", "2", "--threads", "1",
            "--out", str(out), *extra]


def _remote_args(sshd, exe: str, base: Path) -> list[str]:
    return ["--remote", sshd["url"], "--ssh-config", sshd["config"], "--remote-exe", exe, "--remote-dir", str(base)]


@needs_sshd
def test_bench_remote_gives_the_local_rows_labelled_with_the_device(sshd, tiny_fp32_exports, device_exe, tmp_path):
    local = runner.invoke(app, _bench_args(tiny_fp32_exports, tmp_path / "local"))
    assert local.exit_code in (0, 1), local.output
    base = tmp_path / "device-tmp"
    r = runner.invoke(app, _bench_args(tiny_fp32_exports, tmp_path / "remote", *_remote_args(sshd, device_exe, base)))
    assert r.exit_code in (0, 1), r.output
    mine = json.loads((tmp_path / "local" / "bench.json").read_text())
    theirs = json.loads((tmp_path / "remote" / "bench.json").read_text())
    assert [row["name"] for row in theirs["rows"]] == [row["name"] for row in mine["rows"]]
    for a, b in zip(mine["rows"], theirs["rows"]):
        assert b["status"] == "ok", b.get("reason")
        assert (a["top1"], a.get("agreement")) == (b["top1"], b.get("agreement")), b["name"]  # same runtime, same CPU
        if b["reference"]:
            assert "where" not in b  # the FP32 reference runs here
        else:
            assert b["where"] == sshd["url"] and b["artifact"] == a["artifact"]
    assert {Path(row["artifact"]).suffix for row in theirs["rows"] if row.get("where")} == {".onnx", ".tflite"}
    dev = theirs["devices"][sshd["url"]]
    assert dev["machine"]["cpu"]["model"] and "torch" not in dev["machine"]["libraries"]  # the slim install ran them
    assert theirs["machine"]["cpu"]["model"] and "devices" in mine and not mine["devices"]
    md = (tmp_path / "remote" / "bench.md").read_text()
    assert f"Device {sshd['url']}:" in md and "| Artifact | Ran on |" in md and f"| m-fp32.onnx | {sshd['url']} |" in md
    assert sshd["url"] in r.output
    assert list(base.iterdir()) == []  # the device's work folder went with the agent


@needs_sshd
def test_a_dropped_connection_mid_run_is_one_line_and_leaves_nothing(sshd, tiny_fp32_exports, device_exe, tmp_path):
    base, out = tmp_path / "device-tmp", tmp_path / "report"
    args = [*_bench_args(tiny_fp32_exports, out), *_remote_args(sshd, device_exe, base)]
    args[args.index("--runs") + 1] = "100000"  # each worker times for its 20 s cap: the drop lands mid-run
    env = {**os.environ, "EDGE_FGIC_NO_PROGRESS": "1"}
    bench = subprocess.Popen([sys.executable, "-m", "edge_fgic", *args], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, env=env)
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and not list(base.glob(".edge-fgic-bench-*/spec-*.json")):
            assert bench.poll() is None, bench.communicate()
            time.sleep(0.2)
        assert list(base.glob(".edge-fgic-bench-*/spec-*.json")), "no worker started on the device"
        time.sleep(1.0)
        ssh = [pid for pid in _children(bench.pid) if _comm(pid) == "ssh"]
        assert ssh, "no ssh client under the bench"
        for pid in ssh:
            os.kill(pid, signal.SIGKILL)
        _, err = bench.communicate(timeout=120)
    finally:
        if bench.poll() is None:
            bench.kill()
    lines = [ln for ln in err.splitlines() if ln.strip()]
    print(lines[0] if lines else err)
    assert bench.returncode == 2 and len(lines) == 1, err
    assert f"lost the connection to {sshd['url']} while running m-fp32." in lines[0] and "nothing was kept" in lines[0]
    assert not out.exists() or not [p for p in out.iterdir()], list(out.iterdir())
    _wait_empty(base)
    deadline = time.monotonic() + 10
    while (left := [p for p in (int(d.name) for d in Path("/proc").glob("[0-9]*")) if str(base) in _cmdline(p)]) \
            and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not left, f"still running on the device: {[_cmdline(p) for p in left]}"  # the agent and its worker ended


def _children(pid: int) -> list[int]:
    kids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            kids.append(int(stat.parent.name))
    return kids


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""
