{
  description = "demod-voice: offline-first voice cloning and text-to-speech (XTTS-v2, Piper, RVC)";

  # CUDA builds of torch/onnxruntime are not on cache.nixos.org. These caches are
  # only used when the user running nix is trusted (docs/nix.md).
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

  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";

  outputs =
    { self, nixpkgs }:
    let
      inherit (nixpkgs) lib;
      systems = [
        "x86_64-linux"
        "aarch64-linux"
      ];
      forAllSystems = f: lib.genAttrs systems f;

      # Only the sources pip needs, so unrelated edits do not rebuild the package.
      src = lib.fileset.toSource {
        root = ./.;
        fileset = lib.fileset.unions [
          ./pyproject.toml
          ./demod_voice
          ./tests
          ./examples
          (lib.fileset.maybeMissing ./README.md)
        ];
      };

      # nixpkgs for one system, with or without CUDA (torch, onnxruntime honour cudaSupport).
      pkgsFor =
        system: cudaSupport:
        import nixpkgs {
          inherit system;
          overlays = [ self.overlays.default ];
          config = {
            allowUnfree = cudaSupport; # the CUDA toolkit is unfree
            inherit cudaSupport;
          };
        };

      # Everything one package set gives: the package, its image, its dev shell.
      outputsFor =
        pkgs:
        let
          pythonEnv = pkgs.callPackage ./nix/python-env.nix { };
          demod-voice = pkgs.callPackage ./nix/package.nix {
            inherit pythonEnv src;
            cudaSupport = pkgs.config.cudaSupport or false;
          };
        in
        {
          inherit pythonEnv demod-voice;
          dockerImage = pkgs.callPackage ./nix/docker-image.nix { inherit demod-voice; };
          devShell = pkgs.callPackage ./nix/dev-shell.nix { inherit pythonEnv; };
          # The package's own tests (passthru.tests) plus the NixOS VM test,
          # which needs the module only the flake knows.
          checks = demod-voice.tests // {
            inherit
              (pkgs.callPackage ./nix/checks.nix {
                inherit demod-voice src;
                inherit (pythonEnv) devEnv;
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
      # `demod-voice` for any nixpkgs (callPackage'd with that set's Python).
      overlays.default = final: prev: {
        demod-voice = final.callPackage ./nix/package.nix {
          pythonEnv = final.callPackage ./nix/python-env.nix { };
          inherit src;
          cudaSupport = final.config.cudaSupport or false;
        };
      };

      packages = forAllSystems (system: {
        # The CUDA-enabled environment (torch and onnxruntime with CUDA).
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

      # CPU builds only: CI machines have no GPU and CUDA needs the binary caches.
      checks = forAllSystems (system: cpu.${system}.checks);

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
