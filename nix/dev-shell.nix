# `nix develop`: an interpreter with every runtime and test dependency, plus
# ruff, ffmpeg, espeak-ng and chromium for the browser tests. The repository is
# put on PYTHONPATH so `python -m pytest tests/<area>` runs the working tree.
{
  lib,
  stdenv,
  mkShell,
  ffmpeg-headless,
  espeak-ng,
  chromium,
  ruff,
  nixfmt,
  pythonEnv,
}:

mkShell {
  name = "demod-voice-dev";
  packages = [
    pythonEnv.devEnv
    ruff
    ffmpeg-headless
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
