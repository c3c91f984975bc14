# demod-voice itself: the Python application built from this repository with
# the dependencies from ./python-env.nix; its tests (./checks.nix) ride along in
# passthru.tests.
{
  lib,
  callPackage,
  runCommand,
  ffmpeg-headless,
  pythonEnv, # the attribute set ./python-env.nix returns
  src,
  cudaSupport ? false,
}:

let
  inherit (pythonEnv) python packagesFor runtimeExtras;
  ps = python.pkgs;

  # The version lives in one place: demod_voice/__init__.py.
  version = builtins.head (
    builtins.match ''.*__version__ = "([^"]+)".*'' (builtins.readFile "${src}/demod_voice/__init__.py")
  );

  demod-voice = ps.buildPythonApplication {
    pname = "demod-voice";
    inherit version src;
    pyproject = true;

    build-system = [
      ps.setuptools
      ps.wheel
    ];
    # With CUDA, the "gpu" extra (onnxruntime with its CUDA provider) joins in.
    dependencies = packagesFor (runtimeExtras ++ lib.optional cudaSupport "gpu");

    # torchcodec (XTTS audio) loads FFmpeg's libraries; the CLI finds ffmpeg on PATH.
    makeWrapperArgs = [
      "--prefix"
      "PATH"
      ":"
      (lib.makeBinPath [ ffmpeg-headless ])
    ];

    # pyproject pins torch/torchaudio to the pair PyPI needs; nixpkgs picks its
    # own matching pair, so version bounds are not enforced here.
    pythonRelaxDeps = true;

    # The suite needs real voices and models from the Nix store and a writable
    # HOME; it runs as passthru.tests.pytest (and `nix flake check`).
    doCheck = false;
    pythonImportsCheck = [ "demod_voice" ];

    passthru = {
      inherit python cudaSupport;
      # `nix build .#cpu.tests.piper-synthesis` etc.; flake checks add the NixOS VM test.
      tests = callPackage ./checks.nix {
        inherit demod-voice src;
        inherit (pythonEnv) devEnv;
      };
    };

    meta = {
      description = "Offline-first voice cloning and text-to-speech: XTTS-v2, Piper, RVC, batch jobs and an OpenAI-compatible server";
      homepage = "https://github.com/demod-voice/demod-voice";
      license = lib.licenses.mit;
      mainProgram = "demod-voice";
      platforms = lib.platforms.linux;
    };
  };
in
demod-voice
