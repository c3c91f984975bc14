# What the locked PyPI wheels need to run from the Nix store, where no /usr/lib
# exists. A pyproject.nix overlay (final: prev: ...), applied after uv2nix's.
#
# - Wheels that link against another wheel's libraries (torch's libtorch_cuda.so
#   against nvidia-cudnn-cu12's libcudnn.so.9, torchcodec against torch's libc10.so)
#   get that wheel's site-packages on autoPatchelf's search path.
# - libcuda.so.1 belongs to the NVIDIA driver, never to a wheel: it is left
#   unresolved at build time and found at run time in /run/opengl-driver/lib
#   (autoAddDriverRunpath; NixOS puts the driver there, the OCI image links it).
# - torchcodec ships one core library per FFmpeg major (4 to 7) and loads the
#   first that works: nixpkgs' FFmpeg 7 satisfies one, the others stay unresolved.
# - Packages the lock has only as sdists (on some platform) get the build
#   systems their pyproject.toml/setup.py names: uv.lock records no build
#   dependencies. Checked against each sdist.
# - With CUDA, onnxruntime-gpu replaces onnxruntime: both install the same
#   `onnxruntime/` folder, so nothing may pull in the CPU one next to it.
{
  lib,
  pkgs,
  cudaSupport,
  src,
}:

final: prev:
let
  inherit (final.python) sitePackages;

  # The CUDA runtime wheels torch depends on (x86_64 only, per uv.lock's markers).
  nvidiaWheels = lib.filterAttrs (name: _: lib.hasPrefix "nvidia-" name) prev;

  # autoPatchelf also looks inside these packages' site-packages (recursively).
  searchIn =
    packages: old:
    (old.preFixup or "")
    + lib.concatMapStrings (p: ''
      addAutoPatchelfSearchPath "${p}/${sitePackages}"
    '') packages;

  # A wheel whose libraries need the GPU driver and the CUDA wheels.
  cudaWheel =
    drv: extraIgnored:
    drv.overrideAttrs (old: {
      nativeBuildInputs = (old.nativeBuildInputs or [ ]) ++ [ pkgs.autoAddDriverRunpath ];
      autoPatchelfIgnoreMissingDeps = [ "libcuda.so.1" ] ++ extraIgnored;
      preFixup = searchIn (lib.attrValues nvidiaWheels) old;
    });

  # Build systems for packages built from an sdist (a wheel needs none).
  withBuildSystem =
    name: spec:
    if prev.${name}.passthru.format != "pyproject" then
      prev.${name}
    else
      prev.${name}.overrideAttrs (old: {
        nativeBuildInputs = (old.nativeBuildInputs or [ ]) ++ final.resolveBuildSystem spec;
      });

  # Packages that declare onnxruntime (piper-tts, faster-whisper): with CUDA
  # they use onnxruntime-gpu's identical module instead.
  withoutCpuOnnxruntime =
    drv:
    drv.overrideAttrs (old: {
      passthru = old.passthru // {
        dependencies = builtins.removeAttrs old.passthru.dependencies [ "onnxruntime" ];
      };
    });
in
# The CUDA runtime wheels link each other (cusolver -> cublas, nvjitlink ...).
lib.mapAttrs (_: drv: cudaWheel drv [ ]) nvidiaWheels
// {
  # The project itself, from the filtered tree (flake.nix `src`), so an edit to
  # docs or CI files does not rebuild it.
  demod-voice = prev.demod-voice.overrideAttrs { inherit src; };

  torch = cudaWheel prev.torch [ ];

  torchaudio = prev.torchaudio.overrideAttrs (old: {
    preFixup = searchIn [ final.torch ] old;
  });

  docopt = withBuildSystem "docopt" { setuptools = [ ]; };
  webrtcvad = withBuildSystem "webrtcvad" { setuptools = [ ]; };
  pyworld = withBuildSystem "pyworld" {
    setuptools = [ ];
    cython = [ ];
    numpy = [ ];
  };
}
// lib.optionalAttrs (prev ? monotonic-alignment-search) {
  # coqui-tts's; no aarch64 wheel.
  monotonic-alignment-search = withBuildSystem "monotonic-alignment-search" {
    setuptools = [ ];
    cython = [ ];
    numpy = [ ];
  };
}
// lib.optionalAttrs (prev ? torchcodec) {
  torchcodec = prev.torchcodec.overrideAttrs (old: {
    buildInputs = (old.buildInputs or [ ]) ++ [ pkgs.ffmpeg_7-headless.lib ];
    # One core library per FFmpeg major; only the FFmpeg 7 one resolves.
    autoPatchelfIgnoreMissingDeps = [
      "libavutil.so.56"
      "libavcodec.so.58"
      "libavformat.so.58"
      "libavdevice.so.58"
      "libavfilter.so.7"
      "libswscale.so.5"
      "libswresample.so.3"
      "libavutil.so.57"
      "libavcodec.so.59"
      "libavformat.so.59"
      "libavdevice.so.59"
      "libavfilter.so.8"
      "libswscale.so.6"
      "libswresample.so.4"
      "libavutil.so.58"
      "libavcodec.so.60"
      "libavformat.so.60"
      "libavdevice.so.60"
      "libavfilter.so.9"
      "libswscale.so.7"
    ];
    preFixup = searchIn [ final.torch ] old;
  });
}
// lib.optionalAttrs cudaSupport {
  # TensorRT is not in the lock: its execution provider stays unavailable.
  onnxruntime-gpu = cudaWheel prev.onnxruntime-gpu [
    "libnvinfer.so.10"
    "libnvinfer_plugin.so.10"
    "libnvonnxparser.so.10"
  ];
  piper-tts = withoutCpuOnnxruntime prev.piper-tts;
  faster-whisper = withoutCpuOnnxruntime prev.faster-whisper;
}
