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

      # What the package and its checks read, so unrelated edits do not rebuild
      # it. The packaging tests read the lock, the container files, .ci/ and the
      # Makefile (the pinned uv version).
      src = lib.fileset.toSource {
        root = ./.;
        fileset = lib.fileset.unions [
          ./pyproject.toml
          ./uv.lock
          ./demod_voice
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
          (lib.fileset.maybeMissing ./README.md)
        ];
      };

      # nixpkgs for one system; CUDA adds the `gpu` extra and the driver path.
      pkgsFor =
        system: cudaSupport:
        import nixpkgs {
          inherit system;
          overlays = [ self.overlays.default ];
          config = {
            allowUnfree = cudaSupport; # the CUDA wheels are under NVIDIA's licence
            inherit cudaSupport;
          };
        };

      packageFor =
        pkgs:
        pkgs.callPackage ./nix/package.nix {
          pythonEnv = pkgs.callPackage ./nix/python-env.nix {
            inherit
              workspace
              pyproject-nix
              pyproject-build-systems
              src
              ;
            cudaSupport = pkgs.config.cudaSupport or false;
          };
          inherit src;
          cudaSupport = pkgs.config.cudaSupport or false;
        };

      # Everything one package set gives: the package, its image, its dev shell, its checks.
      outputsFor =
        pkgs:
        let
          demod-voice = packageFor pkgs;
        in
        {
          inherit demod-voice;
          dockerImage = pkgs.callPackage ./nix/docker-image.nix { inherit demod-voice; };
          devShell = pkgs.callPackage ./nix/dev-shell.nix { inherit (demod-voice) pythonEnv; };
          # The package's own tests plus the NixOS VM test, which needs the
          # module only the flake knows. Derivations only: `nix flake check`
          # refuses anything else (callPackage adds override functions).
          checks = lib.filterAttrs (_: lib.isDerivation) (
            demod-voice.tests
            // {
              inherit
                (pkgs.callPackage ./nix/checks.nix {
                  inherit demod-voice src;
                  inherit (demod-voice.pythonEnv) devEnv;
                  nixosModule = self.nixosModules.default;
                })
                nixos-module
                ;
            }
          );
        };

      cpu = forAllSystems (system: outputsFor (pkgsFor system false));
      cuda = forAllSystems (system: outputsFor (pkgsFor system true));
    in
    {
      # `demod-voice` for any nixpkgs, built with that set's python3.
      overlays.default = final: prev: {
        demod-voice = packageFor final;
      };

      packages = forAllSystems (system: {
        # With the `gpu` extra (onnxruntime-gpu) and the driver's library path.
        default = cuda.${system}.demod-voice;
        cpu = cpu.${system}.demod-voice;
        dockerImage = cuda.${system}.dockerImage;
        dockerImage-cpu = cpu.${system}.dockerImage;
      });

      # `nix run . -- piper-infer en_US-joe-medium --text "Hello" -o hello.wav`
      apps = forAllSystems (system: {
        default = {
          type = "app";
          program = lib.getExe self.packages.${system}.default;
        };
        cpu = {
          type = "app";
          program = lib.getExe self.packages.${system}.cpu;
        };
      });

      devShells = forAllSystems (system: {
        default = cpu.${system}.devShell;
        cuda = cuda.${system}.devShell;
      });

      # CPU builds only: CI machines have no GPU.
      checks = forAllSystems (system: cpu.${system}.checks);

      # The model registry (demod_voice/models_manifest.json) and a fetcher that
      # turns one entry into a fixed-output derivation: lib.fetchModel pkgs "xtts-v2".
      lib = {
        modelManifest = lib.importJSON ./demod_voice/models_manifest.json;
        fetchModel = pkgs: name: (pkgs.callPackage ./nix/models.nix { }).fetch name;
      };

      # services.demod-voice, defaulting to this flake's CPU package.
      nixosModules.default =
        { pkgs, ... }:
        {
          imports = [ ./nix/module.nix ];
          services.demod-voice.package = lib.mkDefault self.packages.${pkgs.stdenv.hostPlatform.system}.cpu;
        };

      formatter = forAllSystems (system: nixpkgs.legacyPackages.${system}.nixfmt);
    };
}
