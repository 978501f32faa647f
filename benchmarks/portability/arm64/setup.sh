#!/usr/bin/env bash
# ARM64 under qemu user-mode emulation, without running arm64 code at setup time and without
# binfmt_misc (recipe: ../shared/STACK.md, "ARM64 under user-mode emulation works, with qemu >= 8"),
# and smaller x86 CPUs (AVX2-only, SSE4.2-only) with qemu-x86_64 -cpu MODEL running the repo's own
# x86 python: edge_fgic.bench.emulated (make arm64).
#
#   benchmarks/portability/arm64/setup.sh        idempotent; everything lands in .cache/arm64/ (repo root)
#
# It builds, each step skipped when its stamp is there:
#   .cache/arm64/qemu/usr/bin/qemu-aarch64   qemu-user >= 8 (bookworm-backports' package, apt-get download + extract;
#                                            bookworm's own 7.2 crashes inside onnxruntime/LiteRT's cpuinfo: refused)
#   .cache/arm64/qemu/usr/bin/qemu-x86_64    from the same package (TCG: no AVX-512; CPUID as -cpu MODEL says)
#   .cache/arm64/root                        arm64 Debian bookworm (debootstrap --foreign, then dpkg -x of every .deb)
#   .cache/arm64/site                        aarch64 wheels (numpy, onnxruntime, ai-edge-litert, openvino, pillow, pyyaml,
#                                            onnx for the onnxruntime runner's read-back of its optimised graph)
#                                            at the versions of constraints.txt / the x86 venv
#   .cache/arm64/setup.json                  what was built (paths, versions, timings), read by edge_fgic.bench.arm64
#
# The only system change, and only as root when backports are not yet known to apt: a source list
# /etc/apt/sources.list.d/edge-fgic-bookworm-backports.sources built from the URIs of the existing
# Debian source (then apt-get update). The mirror is never hard-coded: it comes from
# /etc/apt/sources.list.d/debian.sources (or /etc/apt/sources.list); override with ARM64_MIRROR=URI.
#
# Environment: ARM64_CACHE (default <repo>/.cache/arm64), ARM64_MIRROR, PYTHON (pip to use; default the
# repo's .venv/bin/python, else python3), ARM64_FORCE=1 (rebuild everything).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../../.." && pwd)"
CACHE="${ARM64_CACHE:-$REPO/.cache/arm64}"
QEMU_DIR="$CACHE/qemu"
QEMU="$QEMU_DIR/usr/bin/qemu-aarch64"
QEMU_X86="$QEMU_DIR/usr/bin/qemu-x86_64"
X86_CHECK_CPU=Haswell-v4
ROOT="$CACHE/root"
SITE="$CACHE/site"
DL="$CACHE/downloads"
SUITE=bookworm
BACKPORTS_LIST=/etc/apt/sources.list.d/edge-fgic-bookworm-backports.sources
if [ -z "${PYTHON:-}" ]; then
    if [ -x "$REPO/.venv/bin/python" ]; then PYTHON="$REPO/.venv/bin/python"; else PYTHON=python3; fi
fi
export OPENBLAS_NUM_THREADS=1

T0=$(date +%s.%N)
since() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }
say() { printf '[arm64 setup %6ss] %s\n' "$(since "$T0")" "$*"; }
die() { echo "arm64 setup: error: $*" >&2; exit 1; }
is_root() { [ "$(id -u)" = 0 ]; }
[ "${ARM64_FORCE:-0}" = 1 ] && { say "ARM64_FORCE=1: removing $CACHE"; rm -rf "$CACHE"; }
mkdir -p "$CACHE" "$DL"
declare -A STEP_S

# --- the Debian mirror, from the system's own apt sources -------------------------------------------
mirror() {
    if [ -n "${ARM64_MIRROR:-}" ]; then echo "$ARM64_MIRROR"; return; fi
    local f=/etc/apt/sources.list.d/debian.sources
    if [ -f "$f" ]; then  # deb822: the stanza whose Suites hold "$SUITE" (not -security)
        awk -v s="$SUITE" 'BEGIN{RS=""; FS="\n"} {u=""; ok=0;
              for (i=1;i<=NF;i++) { if ($i ~ /^URIs:/) { split($i,a,/[ \t]+/); u=a[2] }
                                    if ($i ~ /^Suites:/) { n=split($i,b,/[ \t]+/); for (j=2;j<=n;j++) if (b[j]==s) ok=1 } }
              if (ok && u != "") { print u; exit } }' "$f"
        return
    fi
    [ -f /etc/apt/sources.list ] && awk -v s="$SUITE" '$1=="deb" && $3==s {print $2; exit}' /etc/apt/sources.list
}
MIRROR="$(mirror)"
[ -n "$MIRROR" ] || die "no Debian $SUITE mirror in /etc/apt/sources.list.d/debian.sources or /etc/apt/sources.list; set ARM64_MIRROR=URI"

qemu_version() { "$1" --version 2>/dev/null | sed -n 's/^qemu-[a-z0-9_]* version \([0-9][0-9.]*\).*/\1/p' | head -1; }
version_ok() { [ -n "$1" ] && [ "${1%%.*}" -ge 8 ]; }

# --- (a) qemu-user >= 8: qemu-aarch64 and qemu-x86_64 ---------------------------------------------
step_qemu() {
    local t=$(date +%s.%N) v vx
    if [ -x "$QEMU" ] && version_ok "$(qemu_version "$QEMU")" && [ -x "$QEMU_X86" ] && version_ok "$(qemu_version "$QEMU_X86")"; then
        say "qemu: cached $QEMU, $QEMU_X86 ($(qemu_version "$QEMU"))"; STEP_S[qemu]=0; return
    fi
    command -v apt-get >/dev/null || die "qemu: needs apt-get (Debian) to fetch qemu-user from $SUITE-backports"
    if ! apt-cache madison qemu-user 2>/dev/null | grep -q "$SUITE-backports"; then
        is_root || die "qemu: apt knows no $SUITE-backports; as root this script adds $BACKPORTS_LIST (or: apt-get install -t $SUITE-backports qemu-user)"
        say "qemu: adding $BACKPORTS_LIST (URIs: $MIRROR) and running apt-get update"
        cat > "$BACKPORTS_LIST" <<EOF
# added by edge-fgic benchmarks/portability/arm64/setup.sh: qemu-user >= 8 for ARM64 emulation
Types: deb
URIs: $MIRROR
Suites: $SUITE-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
        apt-get update -qq || die "qemu: apt-get update failed"
    fi
    rm -rf "$DL/qemu" && mkdir -p "$DL/qemu"
    (cd "$DL/qemu" && apt-get download -qq -t "$SUITE-backports" qemu-user 2>&1 | grep -v "unsandboxed" || true)
    local deb; deb=$(ls "$DL"/qemu/qemu-user_*.deb 2>/dev/null | head -1)
    [ -n "$deb" ] || die "qemu: apt-get download -t $SUITE-backports qemu-user fetched nothing"
    rm -rf "$QEMU_DIR.tmp" && mkdir -p "$QEMU_DIR.tmp"
    # the package is ~370 MB of static binaries for every architecture: extract the two we need
    dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$QEMU_DIR.tmp" ./usr/bin/qemu-aarch64 ./usr/bin/qemu-x86_64
    v=$(qemu_version "$QEMU_DIR.tmp/usr/bin/qemu-aarch64")
    version_ok "$v" || die "qemu: $deb gives qemu-aarch64 '${v:-unknown}'; need >= 8 (7.2 crashes in onnxruntime/LiteRT's cpuinfo)"
    vx=$(qemu_version "$QEMU_DIR.tmp/usr/bin/qemu-x86_64")
    version_ok "$vx" || die "qemu: $deb gives qemu-x86_64 '${vx:-unknown}'; need >= 8"
    rm -rf "$QEMU_DIR" && mv "$QEMU_DIR.tmp" "$QEMU_DIR" && rm -rf "$DL/qemu"
    STEP_S[qemu]=$(since "$t")
    say "qemu: $QEMU, $QEMU_X86 ($v) from $(basename "$deb")"
}

# --- (b) arm64 Debian root, no arm64 code executed ----------------------------------------------------
step_root() {
    local t=$(date +%s.%N)
    if [ -f "$ROOT/.edge-fgic-ready" ]; then say "root: cached $ROOT ($(cat "$ROOT/.edge-fgic-ready"))"; STEP_S[root]=0; return; fi
    is_root || die "root: debootstrap needs root (run this script as root once; the result is cached in $CACHE)"
    local dbs=debootstrap dbs_dir=""
    if ! command -v debootstrap >/dev/null; then  # use Debian's script without installing it
        rm -rf "$DL/debootstrap" && mkdir -p "$DL/debootstrap"
        (cd "$DL/debootstrap" && apt-get download -qq debootstrap 2>&1 | grep -v "unsandboxed" || true)
        dpkg -x "$DL"/debootstrap/debootstrap_*.deb "$DL/debootstrap/x" || die "root: could not fetch debootstrap"
        dbs="$DL/debootstrap/x/usr/sbin/debootstrap"; dbs_dir="$DL/debootstrap/x/usr/share/debootstrap"
    fi
    rm -rf "$ROOT"
    say "root: debootstrap --foreign --arch=arm64 --variant=minbase $SUITE (mirror from apt sources)"
    DEBOOTSTRAP_DIR="${dbs_dir:-/usr/share/debootstrap}" "$dbs" --foreign --arch=arm64 --variant=minbase \
        --include=python3.11,libpython3.11-stdlib "$SUITE" "$ROOT" "$MIRROR" > "$CACHE/debootstrap.log" 2>&1 \
        || { tail -5 "$CACHE/debootstrap.log" >&2; die "root: debootstrap failed (log: $CACHE/debootstrap.log)"; }
    local n=0 d
    for d in "$ROOT"/var/cache/apt/archives/*.deb; do dpkg -x "$d" "$ROOT"; n=$((n + 1)); done
    [ -x "$ROOT/usr/bin/python3.11" ] || die "root: no usr/bin/python3.11 after extracting $n packages"
    rm -f "$ROOT"/var/cache/apt/archives/*.deb   # extracted; 60 MB less in the cache
    echo "$SUITE arm64 minbase + python3.11, $n packages extracted" > "$ROOT/.edge-fgic-ready"
    STEP_S[root]=$(since "$t")
    say "root: $ROOT ($n packages, $(du -sh "$ROOT" | cut -f1))"
}

# --- (c) aarch64 wheels at the x86 versions -----------------------------------------------------------
pins() {  # exact pins (==X) from constraints.txt; otherwise (numpy 2.4.*, pillow, pyyaml) the x86 venv's version
    "$PYTHON" - "$REPO/constraints.txt" <<'EOF'
import re, sys
from importlib.metadata import version, PackageNotFoundError
# onnx: the onnxruntime runner reads back the graph ORT optimised with it (edge_fgic.runtime imports it lazily)
want = ["numpy", "onnxruntime", "ai-edge-litert", "openvino", "pillow", "pyyaml", "onnx"]
spec = {}
for line in open(sys.argv[1]):
    m = re.match(r"\s*([A-Za-z0-9_.-]+)\s*(==\s*[^\s#;]+)", line)
    if m:
        spec[m.group(1).lower()] = m.group(2).replace(" ", "")
for name in want:
    s = spec.get(name, "")
    if not s or "*" in s:
        try:
            s = "==" + version(name)
        except PackageNotFoundError:
            pass
    print(name + s)
EOF
}
step_site() {
    local t=$(date +%s.%N) want plat="" v
    want="$(pins | tr '\n' ' ')"
    if [ -f "$SITE/.edge-fgic-pins" ] && [ "$(cat "$SITE/.edge-fgic-pins")" = "$want" ]; then
        say "site: cached $SITE ($want)"; STEP_S[site]=0; return
    fi
    for v in 17 27 28 31 34 35 36; do plat="$plat --platform manylinux_2_${v}_aarch64"; done  # glibc 2.36 in bookworm
    rm -rf "$SITE.tmp"
    say "site: pip install --target (aarch64, cp311): $want"
    # shellcheck disable=SC2086
    "$PYTHON" -m pip install -q --disable-pip-version-check --no-warn-conflicts --no-compile --target "$SITE.tmp" \
        --platform manylinux2014_aarch64 $plat --python-version 3.11 --implementation cp --only-binary=:all: $want \
        2>&1 | grep -v "is ignored: it is neither" || true
    [ -d "$SITE.tmp/onnxruntime" ] && [ -d "$SITE.tmp/ai_edge_litert" ] && [ -d "$SITE.tmp/openvino" ] \
        || die "site: pip could not install the aarch64 wheels ($want)"
    echo "$want" > "$SITE.tmp/.edge-fgic-pins"
    rm -rf "$SITE" && mv "$SITE.tmp" "$SITE"
    STEP_S[site]=$(since "$t")
    say "site: $SITE ($(du -sh "$SITE" | cut -f1))"
}

# --- a smoke run: the emulated python imports the runtimes and edge_fgic.runtime ----------------------
step_check() {
    local t=$(date +%s.%N) out
    out=$(PYTHONPATH="$SITE:$REPO" PYTHONNOUSERSITE=1 PYTHONDONTWRITEBYTECODE=1 \
          "$QEMU" -L "$ROOT" -cpu neoverse-n1 "$ROOT/usr/bin/python3.11" -c '
import sys, platform, numpy, onnxruntime, openvino, ai_edge_litert.interpreter, edge_fgic.runtime
heavy = [m for m in ("torch", "onnx", "tensorflow") if m in sys.modules]
print(platform.machine(), platform.python_version(), "numpy", numpy.__version__, "onnxruntime", onnxruntime.__version__,
      "openvino", openvino.get_version().split("-")[0], "| heavy modules imported:", heavy or "none")' 2>&1 | grep -v MIDR_EL1) \
        || die "check: the emulated python failed: $out"
    say "check (neoverse-n1): $out"
    # the repo's own x86 python under qemu-x86_64: CPUID must say AVX2 without AVX-512 (TCG has none)
    out=$(PYTHONPATH="$REPO" PYTHONDONTWRITEBYTECODE=1 "$QEMU_X86" -cpu "$X86_CHECK_CPU" "$PYTHON" -c '
import numpy, onnxruntime, openvino, ai_edge_litert.interpreter, edge_fgic.runtime
try:
    from numpy._core._multiarray_umath import __cpu_features__ as f
except ImportError:
    from numpy.core._multiarray_umath import __cpu_features__ as f
assert f["AVX2"] and not f["AVX512F"], "CPUID still reports AVX-512 (or no AVX2)"
print("AVX2", f["AVX2"], "AVX512F", f["AVX512F"], "| OpenVINO capabilities:",
      ",".join(openvino.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")))' 2>&1) \
        && say "check (x86-64 $X86_CHECK_CPU, $PYTHON): $out" \
        || say "check: WARNING: $PYTHON under qemu-x86_64 -cpu $X86_CHECK_CPU failed, so the x86-64:* rows will too: $(tail -1 <<< "$out")"
    STEP_S[check]=$(since "$t")
}

step_qemu
step_root
step_site
step_check

TOTAL=$(since "$T0")
"$PYTHON" - "$CACHE/setup.json" "$QEMU" "$(qemu_version "$QEMU")" "$QEMU_X86" "$(qemu_version "$QEMU_X86")" "$ROOT" "$SITE" \
    "$TOTAL" "$(du -sm "$CACHE" | cut -f1)" "${STEP_S[qemu]}" "${STEP_S[root]}" "${STEP_S[site]}" <<'EOF'
import datetime, json, os, sys
p, qemu, qv, qemu_x86, qxv, root, site, total, mb, *steps = sys.argv[1:]
old = json.load(open(p)) if os.path.exists(p) else {}
built = dict(old.get("build_s") or {})  # seconds each step took when it was last built (0 now = cached)
for name, s in zip(("qemu", "root", "site"), steps):
    if float(s) > 0:
        built[name] = round(float(s), 1)
json.dump({"qemu": qemu, "qemu_version": qv, "qemu_x86_64": qemu_x86, "qemu_x86_64_version": qxv, "root": root, "root_desc": open(root + "/.edge-fgic-ready").read().strip(),
           "python": root + "/usr/bin/python3.11", "site": site, "pins": open(site + "/.edge-fgic-pins").read().split(),
           "cache_mb": int(mb), "build_s": built, "last_run_s": round(float(total), 1),
           "updated": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}, open(p, "w"), indent=2)
EOF
say "done in $TOTAL s (qemu ${STEP_S[qemu]} s, root ${STEP_S[root]} s, site ${STEP_S[site]} s, check ${STEP_S[check]} s; 0 = cached); cache $CACHE = $(du -sh "$CACHE" | cut -f1)"
