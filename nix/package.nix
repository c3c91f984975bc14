# demod-voice as users run it: the locked environment (./python-env.nix) behind
# one `demod-voice` executable, with the system programs it calls on PATH
# (ffmpeg for the CLI's audio conversion, clang for tinygrad's CPU device) and,
# with CUDA, the driver's library folder. Its checks (./checks.nix) ride along
# in passthru.tests.
{
  lib,
  callPackage,
  runCommand,
  makeWrapper,
  ffmpeg-headless,
  clang,
  pythonEnv, # the attribute set ./python-env.nix returns
  src, # what the package installs (flake.nix)
  testSrc ? src, # what testSuite.pytest reads: src plus tests/, bin/, ... (flake.nix)
  cudaSupport ? false,
}:

let
  # The version lives in one place: demod_voice/__init__.py.
  version = builtins.head (
    builtins.match ''.*__version__ = "([^"]+)".*'' (builtins.readFile (src + "/demod_voice/__init__.py"))
  );

  wrapperArgs = [
    "--prefix"
    "PATH"
    ":"
    (lib.makeBinPath [
      ffmpeg-headless
      clang
    ])
  ]
  ++ lib.optionals cudaSupport [
    # libcuda.so.1 comes from the driver (NixOS: /run/opengl-driver/lib).
    "--suffix"
    "LD_LIBRARY_PATH"
    ":"
    "/run/opengl-driver/lib"
  ];

  demod-voice =
    runCommand "demod-voice-${version}"
      {
        inherit version;
        nativeBuildInputs = [ makeWrapper ];
        passthru = {
          inherit pythonEnv testSrc;
          inherit (pythonEnv) python pythonSet;
          inherit cudaSupport wrapperArgs;
          # `nix build .#cpu.tests.piper-synthesis` etc. callPackage adds
          # override/overrideDerivation to what checks.nix returns: keep derivations only.
          tests = lib.filterAttrs (_: lib.isDerivation) (
            callPackage ./checks.nix {
              inherit demod-voice;
              src = testSrc;
              inherit (pythonEnv) devEnv;
            }
          );
        };
        meta = {
          description = "Offline-first voice cloning and text-to-speech: XTTS-v2, Piper, RVC, batch jobs and an OpenAI-compatible server";
          homepage = "https://github.com/demod-voice/demod-voice";
          license = lib.licenses.mit;
          mainProgram = "demod-voice";
          # The systems uv.lock resolves wheels for (and the flake evaluates); not all of Linux.
          platforms = [
            "x86_64-linux"
            "aarch64-linux"
          ];
        };
      }
      ''
        mkdir -p $out/bin
        makeWrapper ${pythonEnv.env}/bin/demod-voice $out/bin/demod-voice ${lib.escapeShellArgs wrapperArgs}
      '';
in
demod-voice
