# A stand-in for the parts of nixpkgs that no library here provides: stdenv
# (mkDerivation), fetchers, setup hooks, runCommand, dockerTools, testers, formats
# and the interpreter. Everything else is real: `lib` is nixpkgs' own lib
# (from the Nix inputs directory, nix/ci/inputs.nix), callPackage/newScope are lib.callPackageWith
# (so `override` and an unknown argument behave as in nixpkgs), and the Python
# package set is pyproject.nix + uv2nix applied to this repository's uv.lock.
#
# Builders do not build: a "derivation" here is an attribute set with
# type = "derivation", the arguments it got, and a working overrideAttrs.
{
  system ? "x86_64-linux",
  config ? { },
  overlays ? [ ],
  # Python version of the stand-in interpreter (nixpkgs' python3 near the pinned rev is 3.13).
  pythonVersion ? "3.11.7",
}:

let
  lib = import ((import ./vendor.nix).nixpkgsLib + "/lib");
  platform = lib.systems.elaborate system;
  fakeHash = name: builtins.substring 0 32 (builtins.hashString "sha256" name);
  storePath = name: "/nix/store/${fakeHash name}-${name}";

  # nixpkgs' check-meta for licences: a package whose meta.license is unfree is refused (at its
  # outPath) unless config.allowUnfree or config.allowUnfreePredicate allows it.
  unfreeRefused =
    attrs: pkg:
    lib.any (l: !(l.free or true)) (lib.toList (attrs.meta.license or [ ]))
    && !(config.allowUnfree or false)
    && !((config.allowUnfreePredicate or (_: false)) pkg);
  refuseUnfree =
    name:
    throw "Package ‘${name}’ has an unfree license, refusing to evaluate (set config.allowUnfree, or allowUnfreePredicate for it, as in nixpkgs)";

  # stdenv.mkDerivation: accepts attrs or (finalAttrs: attrs); overrideAttrs takes
  # (old: ...) or (final: old: ...), like lib.toExtension in nixpkgs.
  mkDerivation =
    attrsOrFn:
    let
      toFn = x: if builtins.isFunction x then x else (_: x);
      make =
        fn:
        let
          attrs = fn final;
          name = attrs.name or "${attrs.pname}-${attrs.version}";
          passthru = attrs.passthru or { };
          identity = builtins.toJSON (
            lib.filterAttrs (_: v: !(builtins.isFunction v)) (
              builtins.removeAttrs attrs [
                "passthru"
                "meta"
              ]
            )
          );
          final =
            attrs
            // passthru
            // {
              type = "derivation";
              inherit name passthru;
              # Like a real store path, it depends on every attribute that would reach the
              # builder (derivations by their own outPath), not only on the name.
              outPath =
                if unfreeRefused attrs final then
                  refuseUnfree name
                else
                  "/nix/store/${fakeHash (name + identity)}-${name}";
              drvPath = storePath "${name}.drv";
              meta = attrs.meta or { };
              overrideAttrs =
                f:
                make (
                  self:
                  let
                    prev = fn self;
                    step = if builtins.isFunction f then f prev else f;
                    ext = if builtins.isFunction step then f self prev else step;
                  in
                  prev // ext
                );
            };
        in
        final;
    in
    make (toFn attrsOrFn);

  drv = name: attrs: mkDerivation (attrs // { inherit name; });

  base = final: {
    inherit lib system;
    config = {
      cudaSupport = false;
      allowUnfree = false;
    }
    // config;

    callPackage = lib.callPackageWith final;
    newScope = extra: lib.callPackageWith (final // extra);
    buildPackages = final;
    pkgs = final;

    stdenv = {
      hostPlatform = platform;
      buildPlatform = platform;
      targetPlatform = platform;
      inherit (platform) isLinux isDarwin;
      inherit mkDerivation;
      # gcc's runtime: libstdc++, libgcc_s, libatomic, libgomp.
      cc.cc.lib = drv "gcc-lib" { };
      cc.libc = {
        pname = "glibc";
        version = "2.40"; # any glibc >= 2.34 selects the same manylinux wheels
        linuxHeaders.version = "6.12";
      };
    };

    python3 = final.callPackage ./python.nix { version = pythonVersion; };
    # The flake names python311; the stand-in gives the version a test asks for.
    python311 = final.python3;
    # build-system-pkgs borrows cython's setup hook from here when it has one.
    python3Packages.cython = drv "cython" { };

    fetchurl =
      {
        url,
        hash ? null,
        sha256 ? null,
        name ? baseNameOf url,
        ...
      }@args:
      drv name {
        outputHash = if hash != null then hash else sha256;
        passthru = {
          inherit url;
        };
        fetchArgs = args;
      };
    runCommand =
      name: env: script:
      drv name (env // { inherit script; });
    linkFarm = name: entries: drv name { inherit entries; };
    makeSetupHook = args: script: drv args.name (args // { inherit script; });
    replaceVars = script: replacements: drv (baseNameOf script) { inherit replacements; };
    mkShell = args: drv (args.name or "shell") args;
    writeText = name: text: drv name { inherit text; };
    writeShellScript = name: text: drv name { inherit text; };

    # Setup hooks and system libraries: only their names matter here.
    autoPatchelfHook = drv "auto-patchelf-hook" { };
    autoAddDriverRunpath = drv "auto-add-driver-runpath-hook" { };
    makeWrapper = drv "make-shell-wrapper-hook" { };
    unzip = drv "unzip" { };
    uv = drv "uv" { };
    ugrep = drv "ugrep" { meta.mainProgram = "ugrep"; };
    # nixpkgs' manylinux library sets: glibc and gcc's runtime (libstdc++, libgcc_s).
    pythonManylinuxPackages = rec {
      manylinux2014 = [
        (drv "glibc" { })
        final.stdenv.cc.cc.lib
      ];
      manylinux2010 = manylinux2014;
      manylinux1 = manylinux2014;
    };
    zlib = drv "zlib" { };
    cacert = drv "nss-cacert" { };
    ffmpeg-headless = drv "ffmpeg-headless" {
      meta.mainProgram = "ffmpeg";
      passthru.lib = drv "ffmpeg-headless-lib" { };
    };
    # torchcodec 0.8 loads FFmpeg 4 to 7; nixpkgs' default FFmpeg may be newer.
    ffmpeg_7-headless = drv "ffmpeg-headless-7" { passthru.lib = drv "ffmpeg-headless-7-lib" { }; };
    espeak-ng = drv "espeak-ng" { };
    clang = drv "clang" { meta.mainProgram = "clang"; };
    chromium = drv "chromium" {
      meta.platforms = [
        "x86_64-linux"
        "aarch64-linux"
      ];
    };
    ruff = drv "ruff" { };
    nixfmt = drv "nixfmt" { };
    nixfmt-tree = drv "nixfmt-tree" { meta.mainProgram = "treefmt"; };
    coreutils = drv "coreutils" { };
    # Only what nix/wheel-fixups.nix takes for onnxruntime-gpu on aarch64; the version says which.
    cudaPackages = final.cudaPackagesFor "12.9";
    cudaPackages_12 = final.cudaPackages;
    cudaPackages_13 = final.cudaPackagesFor "13.0";
    cudaPackagesFor =
      version:
      lib.genAttrs [ "cuda_cudart" "libcublas" "cudnn" "libcufft" "libcurand" ] (
        n:
        mkDerivation {
          pname = n;
          inherit version;
          meta.license = lib.licenses.unfree;
        }
      );
    curl = drv "curl" { meta.mainProgram = "curl"; };

    testers.runNixOSTest = args: drv "vm-test-run-${args.name}" args;
    formats.yaml = _: {
      type = lib.types.attrsOf lib.types.anything;
      generate =
        name: value:
        drv name {
          inherit value;
          passthru.value = value;
        };
    };
    dockerTools = {
      streamLayeredImage = final.dockerTools.buildLayeredImage;
      buildLayeredImage =
        args:
        drv "stream-${args.name}" (
          args
          // {
            passthru = {
              imageName = args.name;
              imageTag = args.tag;
            };
          }
        );
      binSh = drv "bin-sh" { };
      usrBinEnv = drv "usr-bin-env" { };
    };
  };

  pkgs = lib.fix (lib.foldl' (acc: overlay: lib.extends overlay acc) base overlays);
in
pkgs
