"""Compare the interrupted-then-rerun pipelines of kill_resume.sh (runs/kill-<stage>-<signal>) with the
uninterrupted one (runs/kill-base): weights bit for bit, export manifests but for timestamps, paths and hashes,
bench rows' accuracy."""
import json
from pathlib import Path

import torch

base = Path("runs/kill-base")


def strip(m: dict) -> dict:
    m = json.loads(json.dumps(m))
    m["export"].pop("created", None)
    m["export"].pop("build_seconds", None)
    m.pop("files", None)
    m["source"].pop("checkpoint", None)
    m["source"].pop("sha256", None)
    (m.get("round_trip") or {}).pop("seconds", None)
    return m


def accuracy(run: Path) -> dict:
    rows = json.loads((run / "bench" / "bench.json").read_text())["rows"]
    return {r["name"]: (r.get("top1"), r.get("agreement")) for r in rows}


for other in sorted(p for p in Path("runs").glob("kill-*") if p.name not in ("kill-base", "kill-logs")):
    print("==", other.name)
    for stage in ["teacher", "student", "qat"]:
        a = torch.load(base / stage / "best.pt", map_location="cpu", weights_only=False)
        b = torch.load(other / stage / "best.pt", map_location="cpu", weights_only=False)
        sa, sb = a["state_dict"], b["state_dict"]
        same = sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)
        print(f"  {stage:8} weights identical: {same}")
    diffs = 0
    sides = [p for p in sorted((base / "export").glob("*.json")) if p.name != "stage.json"]
    for side in sides:
        theirs = other / "export" / side.name
        if not theirs.exists():
            print("  missing:", side.name)
            diffs += 1
            continue
        sa_, sb_ = strip(json.loads(side.read_text())), strip(json.loads(theirs.read_text()))
        if sa_ != sb_:
            diffs += 1
            print("  manifest differs:", side.name, [k for k in sa_ if sa_.get(k) != sb_.get(k)])
    leftovers = [p.name for p in (other / "export").iterdir() if p.name.startswith(".")]
    print(f"  {len(sides)} export manifests compared; differing: {diffs}; temp leftovers: {leftovers or 'none'}")
    print(f"  bench top-1/agreement identical to the base: {accuracy(base) == accuracy(other)}")
