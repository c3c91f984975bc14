#!/usr/bin/env bash
# `make nix-check`: build the flake's own expressions with nix-build, through the real uv2nix,
# pyproject.nix and build-system-pkgs (the inputs directory, `make nix-inputs`) and this project's
# package set (nix/ci/pkgs) in place of nixpkgs, then check what was built.
#
# Prints `PASS nix`, or `FAIL nix: <what>` and exits 1 (a build of ours that breaks fails CI), or
# `SKIP nix: <why>` and exits 0 where this machine cannot build (no nix, no inputs, not x86_64).
# Results stay as GC roots under .nix-results/, so the next run reuses the store (the wheels are
# fetched once). NIX_CHECK_PYTEST overrides the tests checks.pytest runs here (see below).
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

# keep-outputs: a garbage collection keeps the roots' build inputs too (the downloaded wheels).
export NIX_CONFIG=$'build-users-group =\nsandbox = false\nsubstituters =\nwarn-dirty = false\nkeep-outputs = true'
export DEMOD_NIX_PYTHON_PREFIX DEMOD_NIX_UV
DEMOD_NIX_PYTHON_PREFIX=$(.venv/bin/python -c 'import sys; print(sys.base_prefix)')
DEMOD_NIX_UV=$(readlink -f .uv/bin/uv)
nix-instantiate --eval -E 'import ./nix/ci/inputs.nix { }' >/dev/null 2>/tmp/nix-check-inputs.$$ ||
    skip "$(grep -o 'no Nix inputs.*\|is not at flake.lock.*' /tmp/nix-check-inputs.$$ | head -1 || echo 'inputs directory unusable')"
rm -f /tmp/nix-check-inputs.$$

mkdir -p .nix-results
log=.nix-results/build.log
: >"$log"
# build NAME ATTR: nix-build one attribute of nix/ci/flake.nix into .nix-results/NAME.
build() {
    local name="$1" attr="$2" t=$(date +%s)
    echo "== nix-build $attr"
    if ! nix-build nix/ci/flake.nix -A "$attr" -o ".nix-results/$name" --max-jobs "${NIX_CHECK_JOBS:-2}" --keep-going \
        >>"$log" 2>&1; then
        grep -E "^error|could not satisfy|error:" "$log" | tail -20
        fail "building $attr (log: $log)"
    fi
    echo "   built in $(( $(date +%s) - t )) s: $(readlink ".nix-results/$name")"
}

# 1. The CPU package; its output must be the .venv's, byte for byte. Piper draws noise at random
#    unless its scales are 0 (as checks.piper-synthesis does), so both runs use 0.
build cpu "packages.$system.cpu"
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

# 2. The CUDA flavour's Python environment: autoPatchelf over torch, torchaudio, onnxruntime-gpu and
#    every nvidia wheel; only the driver's libcuda.so.1 may stay unresolved.
build cuda-env "packages.$system.default.pythonEnv.env"
.venv/bin/python nix/ci/check_elf.py "$(readlink .nix-results/cuda-env)" ||
    fail "the CUDA environment has libraries no run path resolves (nix/ci/check_elf.py above)"

# 3. The flake's checks.
build check-help "checks.$system.help"
build check-piper "checks.$system.piper-synthesis"
# checks.pytest runs `-m "not slow and not gpu"` over tests/; on CI's 2 cores the whole suite is
# too slow a second time (make test ran it), so here it runs tests/core.
export NIX_CHECK_PYTEST="${NIX_CHECK_PYTEST:-tests/core}"
build check-pytest "ciChecks.$system.pytest"
tail -3 .nix-results/check-pytest/pytest.log | sed 's/^/   /'

# 4. The dev shell's environment (mkShell's inputDerivation builds every package it holds).
build devshell "devShells.$system.default.inputDerivation"
devenv=$(grep -- '-demod-voice-dev-env$' .nix-results/devshell/packages | head -1)
[ -n "$devenv" ] || fail "the dev shell holds no demod-voice-dev-env"
"$devenv/bin/python" -c 'import demod_voice, pytest, sys; print("   dev env: Python", sys.version.split()[0], "demod-voice", demod_voice.__version__)' ||
    fail "the dev shell's environment cannot import demod_voice and pytest"

echo "Not built here (they need nixpkgs itself, which nix/ci/pkgs stands in for):"
echo "   packages.*.dockerImage*: nixpkgs' dockerTools (streamLayeredImage) builds the layers"
echo "   legacyPackages.*.vmTests.nixos-module: the NixOS test driver, a NixOS system and KVM"
echo "   torchcodec's FFmpeg 7 core (ffmpeg_7-headless): this machine has no FFmpeg 7; nixpkgs provides it"
echo "nix-check: $(( $(date +%s) - start )) s"
echo "PASS nix"
