"""Compare the kill/resume runs of kill_resume.sh with the uninterrupted one: weights bit for bit, export manifests minus timestamps/paths."""
import json, sys
from pathlib import Path
import torch
base = Path("runs/kill-base")
for name in ["kill-student", "kill-qat"]:
    other = Path("runs") / name
    print("==", name)
    for stage in ["teacher", "student", "qat"]:
        a = torch.load(base / stage / "best.pt", map_location="cpu", weights_only=False)
        b = torch.load(other / stage / "best.pt", map_location="cpu", weights_only=False)
        sa, sb = a["state_dict"], b["state_dict"]
        same = sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)
        print(f"  {stage:8} weights identical: {same}")
    diffs = 0
    for side in sorted((base / "export").glob("*.json")):
        if side.name == "stage.json":
            continue
        ma, mb = json.loads(side.read_text()), json.loads((other / "export" / side.name).read_text())
        def strip(m):
            m = json.loads(json.dumps(m))
            m["export"].pop("created", None); m["export"].pop("build_seconds", None)
            m.pop("files", None); m["source"].pop("checkpoint", None); m["source"].pop("sha256", None)
            (m.get("round_trip") or {}).pop("seconds", None)
            q = m.get("quantization") or {}
            for k in ("calibration", "source_quantization"):
                pass
            return m
        sa_, sb_ = strip(ma), strip(mb)
        if sa_ != sb_:
            diffs += 1
            keys = [k for k in sa_ if sa_.get(k) != sb_.get(k)]
            print("  manifest differs:", side.name, keys)
    print("  manifests compared; differing:", diffs)
