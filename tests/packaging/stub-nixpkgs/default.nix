# A recorded stand-in for nixpkgs: `import ./stub-nixpkgs { system; config; overlays; }`
# returns a package set holding only the attributes flake.nix and nix/*.nix use.
# Builders do not build: each returns a "derivation" that records the arguments
# it got (`recorded`), which the tests then inspect. Python package names are the
# ones nixpkgs carries (checked against nixpkgs' sources, see docs/nix.md); a
# misspelt one fails evaluation here just as it would against nixpkgs.
{
  system ? "x86_64-linux",
  config ? { },
  overlays ? [ ],
}:

let
  lib = import ./lib.nix;

  drv =
    name: recorded:
    {
      type = "derivation";
      inherit name recorded;
      outPath = "/nix/store/stub-${name}";
      drvPath = "/nix/store/stub-${name}.drv";
      meta = recorded.meta or { };
    }
    // lib.optionalAttrs (recorded ? version) { inherit (recorded) version; }
    // (recorded.passthru or { });

  # Python packages nixpkgs has under python3Packages (attribute names).
  pythonPackageNames = [
    "numpy" "soundfile" "soxr" "pyloudnorm" "scipy" "pyyaml" "tqdm"
    "onnxruntime" "torchaudio" "torchcodec" "six" "safetensors" "huggingface-hub"
    "transformers" "faiss" "pyworld" "torchcrepe" "setuptools" "wheel" "praat-parselmouth"
    "faster-whisper" "fastapi" "uvicorn" "python-multipart" "prometheus-client" "ray" "tinygrad"
    "pytest" "pytest-timeout" "httpx" "openai" "jiwer" "flask" "playwright" "ruff"
    "librosa" "webrtcvad"
  ];

  mkPython =
    packageOverrides:
    let
      python = {
        pname = "python3";
        version = "3.13";
        sitePackages = "lib/python3.13/site-packages";
        pkgs = ps;
        override = args: mkPython (args.packageOverrides or (_: _: { }));
        withPackages = f: drv "python3-env" { packages = f ps; };
      };
      base =
        self:
        lib.genAttrs pythonPackageNames (n: drv "python3-${n}" { pname = n; })
        // {
          # torch follows nixpkgs' config.cudaSupport, as the real one does.
          torch = drv "python3-torch" {
            pname = "torch";
            cudaSupport = pkgs.config.cudaSupport;
          };
          onnxruntime = drv "python3-onnxruntime" {
            pname = "onnxruntime";
            cudaSupport = pkgs.config.cudaSupport;
          };
          inherit python;
          buildPythonPackage = args: drv "python3-${args.pname}-${args.version}" args;
          buildPythonApplication = args: drv "${args.pname}-${args.version}" args;
          toPythonModule = d: d // { pythonModule = true; };
          fetchPypi = args: drv "${args.pname}-${args.version}-fetch" args;
        };
      ps = lib.fix (self: let b = base self; in b // packageOverrides self b);
    in
    python;

  # An application from nixpkgs that a file calls `.override` on.
  app =
    name: version:
    drv "${name}-${version}" { inherit version; }
    // {
      override = args: drv "${name}-${version}" {
        inherit version;
        overridden = builtins.attrNames args;
        flags = lib.filter (n: builtins.isBool args.${n}) (builtins.attrNames args);
        flagValues = builtins.removeAttrs args [ "python3Packages" "python3" ];
      };
    };

  base = final: {
    inherit lib system;
    config = {
      cudaSupport = false;
      allowUnfree = false;
    } // config;
    stdenv.hostPlatform = { inherit system; };

    callPackage =
      fn: overrides:
      let
        f = if builtins.isFunction fn then fn else import fn;
        auto = builtins.intersectAttrs (builtins.functionArgs f) final;
      in
      f (auto // overrides);

    python3 = mkPython (_: _: { });
    piper-tts = app "piper-tts" "1.3.0";
    tts = app "coqui-tts" "0.26.2";
    cacert = drv "nss-cacert" { };
    ffmpeg-headless = drv "ffmpeg-headless" { meta.mainProgram = "ffmpeg"; };
    espeak-ng = drv "espeak-ng" { };
    chromium = drv "chromium" { meta.platforms = [ "x86_64-linux" "aarch64-linux" ]; };
    ruff = drv "ruff" { };
    nixfmt = drv "nixfmt" { };

    runCommand = name: env: script: drv name { inherit env script; };
    mkShell = args: drv (args.name or "shell") args;
    testers.runNixOSTest = args: drv "vm-test-run-${args.name}" args;
    formats.yaml = _: {
      type = { _type = "type"; name = "yaml"; };
      generate = name: value: drv name { inherit value; };
    };
    dockerTools = {
      buildLayeredImage = args: drv "${args.name}.tar.gz" args;
      streamLayeredImage = args: drv "stream-${args.name}" args;
      binSh = drv "bin-sh" { };
      usrBinEnv = drv "usr-bin-env" { };
    };
  };

  pkgs = lib.fix (final: builtins.foldl' (acc: overlay: acc // overlay final acc) (base final) overlays);
in
pkgs
