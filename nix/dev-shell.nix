# `nix develop`: the locked environment with every extra and the test tools
# (the same versions as `make test`'s .venv), plus ffmpeg, clang, espeak-ng and
# chromium for the browser tests. The repository goes first on PYTHONPATH, so
# `python -m pytest tests/<area>` runs the working tree.
{
  lib,
  stdenv,
  mkShell,
  ffmpeg-headless,
  clang,
  espeak-ng,
  chromium,
  nixfmt,
  pythonEnv,
}:

mkShell {
  name = "demod-voice-dev";
  packages = [
    pythonEnv.devEnv # ruff comes from the lock's dev extra
    ffmpeg-headless
    clang
    espeak-ng
    nixfmt
  ]
  ++ lib.optionals (lib.meta.availableOn stdenv.hostPlatform chromium) [ chromium ];

  shellHook = ''
    export PYTHONPATH="$PWD''${PYTHONPATH:+:$PYTHONPATH}"
    export PATH="$PWD/bin:$PATH"
    echo "demod-voice dev shell: python -m pytest tests/<area> -q ; ruff check demod_voice tests"
  '';
}
