{
  description = "demod-voice: offline-first voice cloning and text-to-speech (XTTS-v2, Piper, RVC)";

  # torch/onnxruntime-gpu come from PyPI wheels (uv.lock), so no CUDA build runs;
  # these caches only matter for nixpkgs' CUDA pieces. Used when the user running
  # nix is trusted (docs/nix.md).
  nixConfig = {
    extra-substituters = [
      "https://cache.nixos-cuda.org"
      "https://cuda-maintainers.cachix.org"
    ];
    extra-trusted-public-keys = [
      "cache.nixos-cuda.org:74DUi4Ye579gUqzH4ziL9IyiJBlDpMRn9MBN8oNan9M="
      "cuda-maintainers.cachix.org-1:0dq3bujKpuEPMCX6U4WylrUDZ9JyUG0VpVZa7CNfq5E="
    ];
  };

  inputs = {
    nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";

    # uv.lock -> Nix: every Python package is the locked file, by its sha256.
    pyproject-nix = {
      url = "github:pyproject-nix/pyproject.nix";
      inputs.nixpkgs.follows = "nixpkgs";
    };
    uv2nix = {
      url = "github:pyproject-nix/uv2nix";
      inputs.pyproject-nix.follows = "pyproject-nix";
      inputs.nixpkgs.follows = "nixpkgs";
    };
    pyproject-build-systems = {
      url = "github:pyproject-nix/build-system-pkgs";
      inputs.pyproject-nix.follows = "pyproject-nix";
      inputs.uv2nix.follows = "uv2nix";
      inputs.nixpkgs.follows = "nixpkgs";
    };
  };

  outputs =
    {
      self,
      nixpkgs,
      pyproject-nix,
      uv2nix,
      pyproject-build-systems,
    }:
    let
      inherit (nixpkgs) lib;
      systems = [
        "x86_64-linux"
        "aarch64-linux"
      ];
      forAllSystems = f: lib.genAttrs systems f;

      # pyproject.toml + uv.lock: the one pin set (docs/install.md).
      workspace = uv2nix.lib.workspace.loadWorkspace { workspaceRoot = ./.; };

      # The package is built from what it installs, so editing a test, CI file or doc does not
      # rebuild it or the images; checks.pytest gets the tree the tests read (bin/ included:
      # tests/core/test_piper_cli.py runs bin/demod-voice).
      src = lib.fileset.toSource {
        root = ./.;
        fileset = lib.fileset.unions [
          ./pyproject.toml
          ./uv.lock
          ./README.md
          ./demod_voice
        ];
      };
      testSrc = lib.fileset.toSource {
        root = ./.;
        fileset = lib.fileset.unions [
          ./pyproject.toml
          ./uv.lock
          ./README.md
          ./demod_voice
          ./bin
          ./tests
          ./examples
          ./containers
          ./.ci
          ./.containerignore
          ./.dockerignore
          ./Makefile
          ./flake.nix
          ./flake.lock
          ./nix
          (lib.fileset.maybeMissing ./docs)
        ];
      };

      # nixpkgs for one system; CUDA adds the `gpu` extra and the driver path.
      # The NVIDIA wheels (torch's CUDA libraries, in the "cpu" flavour too on x86_64) are unfree
      # (nix/wheel-fixups.nix sets meta.license): the CPU flavour allows exactly those; the CUDA
      # flavour allows unfree packages, as NVIDIA's stack (nixpkgs' cudaPackages on aarch64) needs.
      pkgsFor =
        system: cudaSupport:
        import nixpkgs {
          inherit system;
          overlays = [ self.overlays.default ];
          config = {
            allowUnfree = cudaSupport;
            allowUnfreePredicate = pkg: builtins.elem (lib.getName pkg) unfreeWheels;
            inherit cudaSupport;
          };
        };
      # uv.lock's NVIDIA wheels, by name (x86_64: torch's CUDA libraries; onnxruntime-gpu is MIT).
      unfreeWheels = map (p: p.name) (
        builtins.filter (p: lib.hasPrefix "nvidia-" p.name) (lib.importTOML ./uv.lock).package
      );

      # extras: null for every engine (pyproject's "all"), or a list (the piper flavour).
      packageFor =
        pkgs: extras:
        pkgs.callPackage ./nix/package.nix {
          pythonEnv = pkgs.callPackage ./nix/python-env.nix {
            inherit
              workspace
              pyproject-nix
              pyproject-build-systems
              src
              extras
              ;
            cudaSupport = pkgs.config.cudaSupport or false;
          };
          inherit src testSrc;
          cudaSupport = pkgs.config.cudaSupport or false;
        };

      # Everything one package set gives: the package, its image, its dev shell, its checks.
      outputsFor =
        pkgs:
        let
          demod-voice = packageFor pkgs null;
          # Piper, the HTTP server, Wyoming and Whisper speech-to-text (faster-whisper); no torch.
          piper = packageFor pkgs [
            "piper"
            "demo"
            "server"
            "stt"
          ];
        in
        {
          inherit demod-voice piper;
          dockerImage = pkgs.callPackage ./nix/docker-image.nix { inherit demod-voice; };
          dockerImage-piper = pkgs.callPackage ./nix/docker-image.nix {
            demod-voice = piper;
            tag = piper.version + "-piper";
          };
          devShell = pkgs.callPackage ./nix/dev-shell.nix { inherit (demod-voice) pythonEnv; };
          # The package's own tests. Derivations only: `nix flake check` refuses anything else
          # (callPackage adds override functions). The whole pytest suite is not among them: it is
          # `make test`'s run against the same locked versions (the dev shell's environment equals
          # that .venv, tests/packaging/test_nix.py), so CI would run it twice; and a few tests need
          # the network, which the sandbox has not. It is legacyPackages.<system>.testSuite.pytest
          # (docs/nix.md, "Outputs").
          checks = lib.filterAttrs (_: lib.isDerivation) (builtins.removeAttrs demod-voice.tests [ "pytest" ]);
          testSuite = {
            inherit (demod-voice.tests) pytest;
          };
          # The NixOS VM test needs KVM and the nixos-test system feature, which `nix flake
          # check` cannot skip: it lives in legacyPackages.<system>.vmTests (docs/nix.md).
          vmTests = {
            inherit
              (pkgs.callPackage ./nix/checks.nix {
                inherit demod-voice;
                src = testSrc;
                inherit (demod-voice.pythonEnv) devEnv;
                nixosModule = self.nixosModules.default;
              })
              nixos-module
              ;
          };
        };

      cpu = forAllSystems (system: outputsFor (pkgsFor system false));
      cuda = forAllSystems (system: outputsFor (pkgsFor system true));
    in
    {
      # `demod-voice` for any nixpkgs, built with that set's python3.
      overlays.default = final: prev: {
        demod-voice = packageFor final null;
      };

      packages = forAllSystems (
        system:
        {
          # x86_64: with the `gpu` extra (onnxruntime-gpu) and the driver's library path. The lock
          # has no nvidia wheels for aarch64, so there `default` is the CPU flavour; `cuda` takes
          # onnxruntime-gpu's CUDA libraries from nixpkgs' cudaPackages (nix/wheel-fixups.nix).
          default = if system == "x86_64-linux" then cuda.${system}.demod-voice else cpu.${system}.demod-voice;
          cpu = cpu.${system}.demod-voice;
          cuda = cuda.${system}.demod-voice;
          dockerImage = cuda.${system}.dockerImage;
          dockerImage-cpu = cpu.${system}.dockerImage;
          # Piper, the server, Wyoming and Whisper speech-to-text; no torch.
          piper = cpu.${system}.piper;
          dockerImage-piper = cpu.${system}.dockerImage-piper;
        }
      );

      # Not `checks`, so that `nix flake check` and CI build the same set (docs/nix.md, "Outputs"):
      # `nix build .#vmTests.nixos-module` boots a NixOS VM (needs KVM); `nix build
      # .#testSuite.pytest` runs the whole suite (`make test` runs it in CI). `models`: the model
      # registry (demod_voice/models_manifest.json) and `models.fetch "xtts-v2"`, one entry as
      # fixed-output derivations.
      legacyPackages = forAllSystems (
        system:
        let
          pkgs = pkgsFor system false;
        in
        {
          vmTests = cpu.${system}.vmTests;
          testSuite = cpu.${system}.testSuite;
          models = {
            manifest = lib.importJSON ./demod_voice/models_manifest.json;
            fetch = name: (pkgs.callPackage ./nix/models.nix { }).fetch name;
          };
        }
      );

      # `nix run . -- piper-infer en_US-joe-medium --text "Hello" -o hello.wav`
      apps = forAllSystems (
        system:
        let
          app = package: flavour: {
            type = "app";
            program = lib.getExe package;
            meta = {
              description = "demod-voice (${flavour}): ${package.meta.description}";
              inherit (package.meta) license platforms;
            };
          };
        in
        {
          default = app self.packages.${system}.default (
            if system == "x86_64-linux" then "CUDA, with onnxruntime-gpu" else "CPU"
          );
          cpu = app self.packages.${system}.cpu "CPU";
        }
      );

      devShells = forAllSystems (system: {
        default = cpu.${system}.devShell;
        cuda = cuda.${system}.devShell;
      });

      # CPU builds only: CI machines have no GPU.
      checks = forAllSystems (system: cpu.${system}.checks);

      # services.demod-voice, defaulting to this flake's CPU package.
      nixosModules.default =
        { pkgs, ... }:
        {
          imports = [ ./nix/module.nix ];
          services.demod-voice.package = lib.mkDefault self.packages.${pkgs.stdenv.hostPlatform.system}.cpu;
        };

      # `nix fmt`: nixfmt over the tree (plain nixfmt waits on stdin since Nix 2.25, NixOS/nix#11438).
      formatter = forAllSystems (system: nixpkgs.legacyPackages.${system}.nixfmt-tree);
    };
}
