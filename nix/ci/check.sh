#!/usr/bin/env bash
# `make nix-check`: build the flake's own expressions with nix-build, through the real uv2nix,
# pyproject.nix and build-system-pkgs (the inputs directory, `make nix-inputs`) and this project's
# package set (nix/ci/pkgs) in place of nixpkgs, then check what was built.
#
# Every build runs in Nix's sandbox (this script's own NIX_CONFIG below; a probe build proves it).
# Prints `PASS nix`, or `FAIL nix: <what>` and exits 1 (a build of ours that breaks fails CI), or
# `SKIP nix: <why>` and exits 0 where this machine cannot build (no nix, no inputs, not x86_64).
# Results stay as GC roots under .nix-results/, so the next run reuses the store (the wheels are
# fetched once).
set -uo pipefail
cd "$(dirname "$0")/../.."
start=$(date +%s)
system=x86_64-linux

skip() { echo "SKIP nix: $*"; exit 0; }
fail() { echo "FAIL nix: $*"; echo "nix-check: $(( $(date +%s) - start )) s"; exit 1; }

command -v nix-build >/dev/null || skip "nix-build is not installed (Debian: nix-bin)"
[ "$(uname -m)" = x86_64 ] || skip "the checks build $system packages; this machine is $(uname -m)"
[ -x .venv/bin/python ] || fail ".venv is missing (make .venv/.stamp-test)"
[ -x .uv/bin/uv ] || fail ".uv/bin/uv is missing (make .uv/bin/uv)"

export DEMOD_NIX_PYTHON_PREFIX DEMOD_NIX_UV
DEMOD_NIX_PYTHON_PREFIX=$(.venv/bin/python -c 'import sys; print(sys.base_prefix)')
DEMOD_NIX_UV=$(readlink -f .uv/bin/uv)
# This run's own Nix configuration (no /etc/nix/nix.conf needed): every build in the sandbox, as a
# nixbld user, with only the host paths nix/ci/pkgs takes tools and libraries from (nix-config.sh).
getent group nixbld >/dev/null ||
    fail "no nixbld group: the sandbox builds as nixbld users (run .ci/nix-build-users.sh as root)"
NIX_CONFIG=$(bash nix/ci/nix-config.sh "$DEMOD_NIX_PYTHON_PREFIX")
export NIX_CONFIG
nix-instantiate --eval -E 'import ./nix/ci/inputs.nix { }' >/dev/null 2>/tmp/nix-check-inputs.$$ ||
    skip "$(grep -o 'no Nix inputs.*\|is not at flake.lock.*' /tmp/nix-check-inputs.$$ | head -1 || echo 'inputs directory unusable')"
rm -f /tmp/nix-check-inputs.$$

mkdir -p .nix-results
log=.nix-results/build.log
: >"$log"
nix_attr() {  # nix_attr EXPR: evaluate EXPR over nix/ci/flake.nix (as `self`), as JSON
    nix-instantiate --eval --strict --json --read-write-mode \
        -E "let self = import ./nix/ci/flake.nix; in $1" 2>>"$log"
}

# 0. The sandbox: show it is on, and prove it with a probe build (a fresh one each run): it runs as
#    a nixbld user, cannot see this checkout or reach the network, and sees no /etc of the host.
echo "== the sandbox"
nix --extra-experimental-features nix-command show-config 2>/dev/null | grep -E '^(sandbox|sandbox-paths|build-users-group) ' | sed 's/^/   /'
probe=$(nix-build --no-out-link --argstr nonce "$(date +%s%N)" --argstr checkout "$PWD" -E '
{ nonce, checkout }:
derivation {
  name = "demod-voice-sandbox-probe";
  system = "x86_64-linux";
  builder = "/bin/bash";
  inherit nonce checkout;
  args = [ "-c" (builtins.concatStringsSep " && " [
    "export PATH=/usr/bin"
    "test \"$(id -u)\" != 0"
    "! test -e \"$checkout\""
    "! test -e /etc/nix"
    "! (exec 3<>/dev/tcp/1.1.1.1/443) 2>/dev/null"
    "echo \"uid $(id -u) ($(id -un)); $checkout and the network unreachable\" > $out"
  ]) ];
}' 2>>"$log") || fail "the sandbox probe failed: a build could see the checkout or the network, or ran as root (log: $log)"
echo "   sandboxed: a probe build ran as $(cat "$probe")"
# Everything below is instantiated in one evaluation (uv2nix reads the whole lock each time: tens of
# seconds on a loaded machine), then each derivation is realised on its own, timed, its result kept
# as a GC root in .nix-results/NAME.
checks=$(nix_attr "builtins.attrNames self.checks.$system" | tr -d '[]"' | tr ',' ' ') ||
    fail "evaluating checks.$system (log: $log)"
[ -n "$checks" ] || fail "checks.$system is empty"
names=(cpu cuda cuda-env piper)
attrs=("packages.$system.cpu" "packages.$system.default" "packages.$system.default.pythonEnv.env"
       "packages.$system.piper")
for check in $checks; do names+=("check-$check"); attrs+=("checks.$system.$check"); done
names+=(devshell)
attrs+=("devShells.$system.default.inputDerivation")
t=$(date +%s)
mapfile -t drvs < <(nix-instantiate --read-write-mode nix/ci/flake.nix $(printf -- '-A %s ' "${attrs[@]}") 2>>"$log")
[ "${#drvs[@]}" = "${#attrs[@]}" ] || { tail -20 "$log"; fail "evaluating the flake's outputs (log: $log)"; }
echo "== evaluated ${#attrs[@]} outputs in $(( $(date +%s) - t )) s"
declare -A drv_of attr_of
for i in "${!names[@]}"; do drv_of[${names[$i]}]=${drvs[$i]}; attr_of[${names[$i]}]=${attrs[$i]}; done

# build NAME: realise that output into .nix-results/NAME.
build() {
    local name="$1" t=$(date +%s)
    echo "== nix-build ${attr_of[$name]}"
    rm -f ".nix-results/$name"
    if ! nix-store --realise "${drv_of[$name]}" --add-root ".nix-results/$name" --max-jobs "${NIX_CHECK_JOBS:-2}" \
        --keep-going >>"$log" 2>&1; then
        grep -E "^error|could not satisfy|error:" "$log" | tail -20
        fail "building ${attr_of[$name]} (log: $log)"
    fi
    echo "   built in $(( $(date +%s) - t )) s: $(readlink ".nix-results/$name")"
}

# 1. The CPU package; its output must be the .venv's, byte for byte. Piper draws noise at random
#    unless its scales are 0 (as checks.piper-synthesis does), so both runs use 0.
build cpu
text="Nix builds the same voice, bit for bit."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for who in venv nix; do
    exe=.venv/bin/demod-voice
    [ "$who" = nix ] && exe=.nix-results/cpu/bin/demod-voice
    HOME="$work/home-$who" XDG_CACHE_HOME="$work/cache-$who" XDG_CONFIG_HOME="$work/config-$who" \
        "$exe" piper-infer en_US-joe-medium "$text" --noise-scale 0 --noise-w 0 --output "$work/$who.wav" >"$work/$who.log" 2>&1 ||
        { cat "$work/$who.log"; fail "$who demod-voice piper-infer failed"; }
done
cmp -s "$work/venv.wav" "$work/nix.wav" || fail "result/bin/demod-voice piper-infer differs from .venv's"
echo "   piper-infer: $(stat -c %s "$work/nix.wav") bytes, identical to .venv's"
got=$(.nix-results/cpu/bin/demod-voice --version 2>/dev/null | head -1)
echo "   $got"

# 2. The CUDA flavour (packages.default) and its Python environment: autoPatchelf over torch,
#    torchaudio, onnxruntime-gpu and every nvidia wheel; only the driver's libcuda.so.1 may stay
#    unresolved. Then the torch-free piper flavour, which must speak the same bytes.
build cuda
build cuda-env
.venv/bin/python nix/ci/check_elf.py "$(readlink .nix-results/cuda-env)" ||
    fail "the CUDA environment has libraries no run path resolves (nix/ci/check_elf.py above)"
build piper
HOME="$work/home-piper" XDG_CACHE_HOME="$work/cache-piper" XDG_CONFIG_HOME="$work/config-piper" \
    .nix-results/piper/bin/demod-voice piper-infer en_US-joe-medium "$text" --noise-scale 0 --noise-w 0 \
    --output "$work/piper.wav" >"$work/piper.log" 2>&1 || { cat "$work/piper.log"; fail "the piper flavour's piper-infer failed"; }
cmp -s "$work/venv.wav" "$work/piper.wav" || fail "the piper flavour's piper-infer differs from .venv's"
echo "   piper flavour: piper-infer identical to .venv's"

# 3. The flake's checks, every attribute of checks.<system>, as `nix flake check` builds them.
for check in $checks; do
    build "check-$check"
done
[ -s .nix-results/check-health/health.txt ] && sed 's/^/   health: /' .nix-results/check-health/health.txt | head -5

# 4. The dev shell's environment (mkShell's inputDerivation builds every package it holds).
build devshell
devenv=$(grep -- '-demod-voice-dev-env$' .nix-results/devshell/packages | head -1)
[ -n "$devenv" ] || fail "the dev shell holds no demod-voice-dev-env"
"$devenv/bin/python" -c 'import demod_voice, pytest, sys; print("   dev env: Python", sys.version.split()[0], "demod-voice", demod_voice.__version__)' ||
    fail "the dev shell's environment cannot import demod_voice and pytest"

# 5. The formatter: `nix fmt` needs nixpkgs' nixfmt-tree (treefmt + nixfmt), which this machine
#    cannot have; the attribute is evaluated.
fmt=$(nix_attr "self.formatter.$system.name") || fail "evaluating formatter.$system (log: $log)"
echo "== formatter.$system: $fmt (evaluated; \`nix fmt\` needs nixpkgs' nixfmt-tree, not on this machine)"

echo "Not built here (they need nixpkgs itself, which nix/ci/pkgs stands in for; docs/nix.md, \"Outputs\"):"
echo "   packages.*.dockerImage*: nixpkgs' dockerTools (streamLayeredImage) builds the layers"
echo "   legacyPackages.*.vmTests.nixos-module: the NixOS test driver, a NixOS system and KVM"
echo "   legacyPackages.*.testSuite.pytest: the whole suite again; make test runs it against the same lock"
echo "   torchcodec's FFmpeg 7 core (ffmpeg_7-headless): this machine has no FFmpeg 7; nixpkgs provides it"
echo "nix-check: $(( $(date +%s) - start )) s"
echo "PASS nix (every build sandboxed)"
