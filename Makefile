# The commands of README.md. Each creates the environment from the project's own files.
#   make demo   the whole pipeline on the embedded synthetic dataset (teacher, student, QAT, exports, bench); rerun = resume
#   make test   run the whole test suite (what .ci/run calls)
#   make test-fast  the inner loop: every test not marked slow (no training, export or compile; tests/conftest.py)

VENV   ?= .venv
PYTHON ?= python3
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DEMO   ?= runs/demo

.PHONY: demo test test-fast env clean-demo android-jvm sshd

env: $(STAMP)

# torch/torchvision pins live in constraints.txt (see ../shared/STACK.md for why these versions). [all] = the build side
# ([train], [tflite], [weights]) and every runtime; a device installs only what it runs: pip install "edge-fgic[litert]"
$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -c constraints.txt -e ".[all,dev]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/edge-fgic pipeline --out $(DEMO)

test: $(STAMP) android-jvm sshd
	$(BIN)/python -m pytest -q

test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow"

# The Android demo's pure logic is tested on the JVM with Debian's kotlin + junit4 (tests/test_android_demo.py);
# as root (CI) they are installed here, otherwise those tests skip and say what to install.
android-jvm:
	@if command -v kotlinc >/dev/null && [ -f /usr/share/java/junit4.jar ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "installing kotlin + junit4 (Debian) for the Android demo's JVM tests"; \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends kotlin junit4 >/dev/null) \
			|| echo "note: could not install kotlin/junit4; the Android demo's JVM tests will be skipped"; \
	else echo "note: kotlinc or junit4 missing (apt-get install kotlin junit4); the Android demo's JVM tests will be skipped"; fi

# bench --remote is tested against a real OpenSSH server on localhost (tests/test_remote.py); as root (CI) Debian's
# openssh-server is installed here (only its sshd binary is used; no service is started), otherwise those tests skip.
sshd:
	@if [ -x /usr/sbin/sshd ] && command -v ssh >/dev/null && command -v ssh-keygen >/dev/null; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "installing openssh-server (Debian) for the bench --remote tests"; \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends openssh-server openssh-client >/dev/null) \
			|| echo "note: could not install openssh-server; the bench --remote tests will be skipped"; \
	else echo "note: /usr/sbin/sshd missing (apt-get install openssh-server); the bench --remote tests will be skipped"; fi

clean-demo:
	rm -rf $(DEMO) datasets/synthetic_fg

# The demo's deploy artifacts on emulated CPUs (qemu-user >= 8; numerics vs native x86, not timings): ARM64 cores
# (qemu-aarch64) and AVX2-only / SSE4.2-only x86 (qemu-x86_64 -cpu Haswell-v4 / Nehalem running .venv's python).
# Builds .cache/arm64 once (root: adds a bookworm-backports apt source), writes benchmarks/portability/arm64.{json,md}
.PHONY: arm64 emulated
arm64 emulated: $(STAMP)
	benchmarks/portability/arm64/setup.sh
	$(BIN)/python -m edge_fgic.bench.emulated $(DEMO)/export
