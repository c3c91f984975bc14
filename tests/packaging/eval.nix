# Evaluates flake.nix and nix/*.nix with the real nixpkgs lib, pyproject.nix,
# uv2nix and build-system-pkgs (the Nix inputs directory), and exposes what the
# tests assert on. Needs --read-write-mode (fileset.toSource copies to the store):
#
#   nix-instantiate --eval --strict --json --read-write-mode tests/packaging/eval.nix -A outputs
{
  pythonVersion ? "3.11.7",
  system ? "x86_64-linux",
  # JSON of a NixOS configuration for `module` (tests/packaging/test_nix_module.py).
  moduleConfig ? "{}",
  # A registry name for `fetchOne`.
  model ? "",
  # "1": the module's package is the flake's CUDA build (what gpu.device asks for).
  cudaPackage ? "",
}:
let
  root = import ../../nix/ci/source.nix ../..; # the checkout as a flake's store copy (no .venv)
  inputs = import ./inputs.nix { inherit pythonVersion; };
  inherit (inputs) lib;

  flakeDef = import (root + "/flake.nix");
  self =
    flakeDef.outputs {
      inherit self;
      inherit (inputs)
        nixpkgs
        pyproject-nix
        uv2nix
        pyproject-build-systems
        ;
    }
    // {
      outPath = root;
    };

  names = map (d: d.name);
  pkgs = inputs.importNixpkgs { inherit system; };

  # The Python environment for one system / Python version / flavour, as the flake builds it.
  envFor = envWith true;
  # allowNvidia: the flake's licence settings (its NVIDIA wheels allowed, flake.nix pkgsFor); false:
  # nixpkgs' defaults, which refuse unfree packages.
  envWith =
    allowNvidia: cudaSupport:
    let
      p = inputs.importNixpkgs {
        inherit system;
        config = {
          inherit cudaSupport;
        }
        // lib.optionalAttrs allowNvidia {
          allowUnfree = cudaSupport;
          allowUnfreePredicate = pkg: lib.hasPrefix "nvidia-" (lib.getName pkg);
        };
      };
    in
    p.callPackage (root + "/nix/python-env.nix") {
      workspace = inputs.uv2nix.lib.workspace.loadWorkspace { workspaceRoot = root; };
      inherit (inputs) pyproject-nix pyproject-build-systems;
      src = root;
      inherit cudaSupport;
    };

  # name -> { version, wheel url, hash, format } of everything a venv spec resolves to.
  describe =
    env: spec:
    lib.listToAttrs (
      map (d: {
        name = d.pname;
        value = {
          inherit (d) version;
          format = d.passthru.format or "local";
          url = d.src.passthru.url or null;
          hash = d.src.outputHash or null;
        };
      }) (env.pythonSet.resolveVirtualEnv spec)
    );
  # The flake's NixOS module through the real lib.evalModules, with typed
  # stand-ins for the NixOS options it sets (./nixos-options.nix). Failed
  # assertions throw as a NixOS system build does.
  evalModule =
    configuration:
    let
      evaluated = lib.evalModules {
        modules = [
          ./nixos-options.nix
          self.nixosModules.default
          { _module.args.pkgs = inputs.importNixpkgs { inherit system; }; }
          (lib.optionalAttrs (cudaPackage != "") {
            services.demod-voice.package = lib.mkForce self.packages.${system}.default;
          })
          configuration
        ];
      };
      c = evaluated.config;
      failed = map (a: a.message) (builtins.filter (a: !a.assertion) c.assertions);
      unit = u: {
        inherit (u) description wantedBy after environment;
        serviceConfig = lib.mapAttrs (_: v: if lib.isList v then map toString v else v) u.serviceConfig // {
          # Scripts by their text; plain command lines ("+chgrp ...") as they are.
          ExecStartPre = map (s: if builtins.isString s then s else s.text) (u.serviceConfig.ExecStartPre or [ ]);
        };
      };
    in
    if failed != [ ] then
      throw "\nFailed assertions:\n${lib.concatMapStrings (m: "- ${m}\n") failed}"
    else
      {
        inherit (c) warnings;
        firewall = c.networking.firewall.allowedTCPPorts;
        units = lib.mapAttrs (_: unit) c.systemd.services;
        configs = lib.mapAttrs (_: inst: inst.configFile.passthru.value) c.services.demod-voice.instances;
        packages = lib.mapAttrs (_: inst: inst.package.name) c.services.demod-voice.instances;
      };
in
{
  inherit self;

  module = evalModule (builtins.fromJSON moduleConfig);

  # Link names inside each extra voice's store folder (Piper voices are flattened).
  voiceLinks =
    let
      extra = (builtins.fromJSON moduleConfig).services.demod-voice.extraModels or { };
      registry = pkgs.callPackage (root + "/nix/models.nix") { extraModels = extra; };
    in
    lib.mapAttrs (name: _: map (e: e.name) (registry.fetchVoice name).entries) extra;

  # The VM test's machine, evaluated like any configuration (minus the VM's own options).
  vmTest =
    let
      test = self.legacyPackages.${system}.vmTests.nixos-module;
      node = test.nodes.machine { };
    in
    {
      inherit (test) name testScript;
      module = evalModule (builtins.removeAttrs node [ "virtualisation" ]);
    };

  # What the fetchers use: every registry entry as Nix reads it, with its URLs and FOD hashes.
  fetchers =
    let
      registry = pkgs.callPackage (root + "/nix/models.nix") { };
    in
    lib.mapAttrs (
      name: entry:
      let
        d = self.legacyPackages.${system}.models.fetch name;
        unpinned = map (f: f.path) (builtins.filter (f: f.sha256 or null == null) entry.files);
      in
      if unpinned != [ ] then
        { inherit unpinned; }
      else
        {
          inherit (d) urls;
          files = map (e: {
            inherit (e) name;
            url = e.path.passthru.url;
            hash = e.path.outputHash;
          }) d.entries;
        }
    ) registry.models;
  # Every file of one model as a fixed-output derivation (its hash forced).
  fetchOne = map (e: e.path.outputHash) (self.legacyPackages.${system}.models.fetch model).entries;
  manifest = self.legacyPackages.${system}.models.manifest;

  # NVIDIA's wheels are unfree: refused without an allowance, allowed exactly by the flake.
  unfree =
    let
      builds = x: (builtins.tryEval (builtins.seq x.outPath true)).success;
      plain = envWith false false;
    in
    {
      licenses = lib.mapAttrs (_: d: d.meta.license.shortName or null) (
        lib.filterAttrs (n: _: lib.hasPrefix "nvidia-" n) (envFor false).pythonSet
      );
      torchLicense = (envFor false).pythonSet.torch.meta.license.shortName or null;
      refusedWithoutAllowance = !(builds plain.env);
      piperWithoutAllowance = builds (plain.pythonSet.mkVirtualEnv "piper-env" { demod-voice = [ "piper" ]; });
      flakeCpu = builds self.packages.${system}.cpu;
      flakeCuda = builds self.packages.${system}.cuda;
      overlayWithoutAllowance = builds (inputs.importNixpkgs {
        inherit system;
        overlays = [ self.overlays.default ];
      }).demod-voice;
    };

  # aarch64's onnxruntime-gpu links CUDA 13: which cudaPackages its CUDA libraries come from.
  aarch64OnnxruntimeGpu =
    let
      p = inputs.importNixpkgs {
        system = "aarch64-linux";
        config = {
          cudaSupport = true;
          allowUnfree = true;
        };
      };
      env = p.callPackage (root + "/nix/python-env.nix") {
        workspace = inputs.uv2nix.lib.workspace.loadWorkspace { workspaceRoot = root; };
        inherit (inputs) pyproject-nix pyproject-build-systems;
        src = root;
        cudaSupport = true;
      };
    in
    names env.pythonSet.onnxruntime-gpu.buildInputs;

  outputs = {
    top = builtins.attrNames (builtins.removeAttrs self [ "outPath" ]);
    packages = lib.mapAttrs (_: builtins.attrNames) self.packages;
    apps = lib.mapAttrs (_: builtins.attrNames) self.apps;
    devShells = lib.mapAttrs (_: builtins.attrNames) self.devShells;
    checks = lib.mapAttrs (_: builtins.attrNames) self.checks;
    vmTests = lib.mapAttrs (_: l: builtins.attrNames l.vmTests) self.legacyPackages;
    # Each check's `type`, as `nix flake check` looks at it.
    checkTypes = lib.mapAttrs (_: lib.mapAttrs (_: c: c.type or (builtins.typeOf c))) self.checks;
    nixosModules = builtins.attrNames self.nixosModules;
    appProgram = self.apps.${system}.default.program;
    appType = self.apps.${system}.default.type;
    formatter = self.formatter.${system}.name;
    appMeta = lib.mapAttrs (_: a: a.meta) self.apps.${system};
    platforms = self.packages.${system}.cpu.meta.platforms;
    testSuite = lib.mapAttrs (_: l: builtins.attrNames l.testSuite) self.legacyPackages;
    legacyPackages = lib.mapAttrs (_: builtins.attrNames) self.legacyPackages;
    overlayPackage = (inputs.importNixpkgs { overlays = [ self.overlays.default ]; }).demod-voice.name;
  };

  package =
    let
      p = self.packages.${system};
    in
    {
      name = p.cpu.name;
      inherit (p.cpu) version;
      mainProgram = p.cpu.meta.mainProgram;
      cpuWrapper = p.cpu.wrapperArgs;
      cudaWrapper = p.default.wrapperArgs;
      cpuCuda = p.cpu.cudaSupport;
      defaultCuda = p.default.cudaSupport;
      cpuEnv = p.cpu.pythonEnv.env.name;
      script = p.cpu.script;
      tests = builtins.attrNames p.cpu.tests;
      # Where the project's own source comes from (the filtered tree).
      projectSrc = "${p.cpu.pythonSet.demod-voice.src}";
      # What checks.pytest copies and runs.
      testSrc = "${p.cpu.testSrc}";
    };

  # What the venvs hold: { cpu, cuda, dev } each name -> version/wheel.
  env = {
    all = describe (envFor false) { demod-voice = [ "all" ]; };
    cuda = describe (envFor true) {
      demod-voice = [
        "all"
        "gpu"
      ];
    };
    default = describe (envFor false) { demod-voice = [ ]; };
    # The piper flavour, with the extras the flake gives it.
    piper = describe (envFor false) { demod-voice = self.packages.${system}.piper.pythonEnv.extras; };
    dev = describe (envFor false) {
      demod-voice = [
        "all"
        "dev"
        "parity"
      ];
    };
    extras = {
      cpu = (envFor false).extras;
      cuda = (envFor true).extras;
    };
  };

  # The fix-ups the wheels get (autoPatchelf, driver path, build systems).
  fixups =
    let
      s = (envFor true).pythonSet;
      attrs = d: {
        nativeBuildInputs = names (d.nativeBuildInputs or [ ]);
        buildInputs = names (d.buildInputs or [ ]);
        ignored = d.autoPatchelfIgnoreMissingDeps or [ ];
        preFixup = d.preFixup or "";
        dependencies = builtins.attrNames (d.passthru.dependencies or { });
      };
    in
    lib.mapAttrs (_: attrs) (
      {
        inherit (s)
          torch
          torchaudio
          onnxruntime-gpu
          piper-tts
          faster-whisper
          pyworld
          webrtcvad
          docopt
          nvidia-cudnn-cu12
          nvidia-cusolver-cu12
          nvidia-cusparse-cu12
          ;
      }
      // lib.optionalAttrs (s ? torchcodec) { inherit (s) torchcodec; }
    );

  # The fixed (final) nvidia wheels' store paths, which the search paths must name.
  fixedNvidia =
    let
      s = (envFor true).pythonSet;
    in
    lib.mapAttrs (_: d: d.outPath) (lib.filterAttrs (n: _: lib.hasPrefix "nvidia-" n) s);

  # What autoPatchelf gets per package of the dev environment: test_every_wheel_library_resolves.
  linkInputs =
    let
      s = (envFor false).pythonSet;
    in
    lib.listToAttrs (
      map (
        d:
        lib.nameValuePair d.pname {
          buildInputs = names (d.buildInputs or [ ]);
          wheels = d.passthru.libraryWheels or [ ];
          ignored = d.autoPatchelfIgnoreMissingDeps or [ ];
          format = d.passthru.format or "local";
        }
      ) (s.resolveVirtualEnv { demod-voice = [ "all" "dev" ]; })
    );

  # Packages built from an sdist (not a wheel) and the build inputs they get.
  sdistBuilds = lib.mapAttrs (_: d: names d.nativeBuildInputs) (
    lib.filterAttrs (n: d: lib.isDerivation d && (d.passthru.format or "") == "pyproject" && n != "demod-voice") (
      lib.listToAttrs (
        map (d: lib.nameValuePair d.pname d) (
          (envFor true).pythonSet.resolveVirtualEnv {
            demod-voice = [
              "all"
              "gpu"
              "dev"
            ];
          }
        )
      )
    )
  );

  image = lib.mapAttrs (_: img: {
    inherit (img) config extraCommands;
    name = img.imageName;
    tag = img.imageTag;
    contents = names img.contents;
  }) {
    cpu = self.packages.${system}.dockerImage-cpu;
    cuda = self.packages.${system}.dockerImage;
  };

  devShell =
    let
      s = self.devShells.${system}.default;
    in
    {
      packages = names s.packages;
      inherit (s) shellHook;
    };

  # What checks.nix gives through callPackage before the flake filters it.
  rawChecks = lib.mapAttrs (_: lib.isDerivation) (
    pkgs.callPackage (root + "/nix/checks.nix") {
      demod-voice = self.packages.${system}.cpu;
      inherit (self.packages.${system}.cpu.pythonEnv) devEnv;
      src = root;
    }
  );

  # The stand-in's callPackage is the real lib.callPackageWith: these must fail.
  badOverride =
    (
      (pkgs.callPackage (root + "/nix/package.nix") {
        inherit (self.packages.${system}.cpu) pythonEnv;
        src = root;
      }).override
      { noSuchArgument = true; }
    ).name;
  missingArgument = (pkgs.callPackage ({ noSuchPackage }: noSuchPackage) { }).name;

  checks =
    let
      c = self.checks.${system};
      suite = self.legacyPackages.${system}.testSuite;
    in
    {
      names = builtins.attrNames c;
      fromPassthru = c.help == self.packages.${system}.cpu.tests.help;
      scripts = lib.mapAttrs (_: v: v.script or "") (c // { inherit (suite) pytest; });
      pytestFromPassthru = suite.pytest == self.packages.${system}.cpu.tests.pytest;
      pytestInputs = names suite.pytest.nativeBuildInputs;
    };
}
