# A package set of the project's own, for machines where nixpkgs cannot be brought (CI here):
# `import <this> { system; config; overlays; }` as the flake imports nixpkgs.
#
# It BUILDS, with this machine's tools: stdenv.mkDerivation runs ./setup.sh (nixpkgs' generic
# builder in miniature: setup hooks, env hooks, phases) with bash, coreutils, gcc, patchelf and
# unzip from the host; `python3`/`python311` is the CI interpreter (DEMOD_NIX_PYTHON_PREFIX, i.e.
# the .venv's sys.base_prefix); `uv` is the pinned uv (DEMOD_NIX_UV); `fetchurl` is Nix's builtin
# fetcher (<nix/fetchurl.nix>), so the lock's wheels are fetched by URL and sha256 into the store
# once and reused; autoPatchelfHook fails on any unresolved DT_NEEDED (./hooks/auto-patchelf.py).
#
# System libraries (glibc, gcc's runtime, zlib) are the host's, linked into store folders. What the
# host does not have is a stand-in that says so at build time (hostTool / absentLibs below):
# dockerTools and NixOS VM tests cannot be built with this set (nix/ci/check.sh says why).
{
  system ? builtins.currentSystem,
  config ? { },
  overlays ? [ ],
  # Evaluation only (tests/packaging): a Python version instead of DEMOD_NIX_PYTHON_PREFIX.
  pythonVersion ? null,
  ...
}:

let
  inputs = import ../inputs.nix { };
  lib = import (inputs.nixpkgsLib + "/lib");
  platform = lib.systems.elaborate system;
  bash = "/bin/bash";

  # Attributes a derivation cannot take (functions, plain attribute sets) stay on the result only.
  forDerivation =
    attrs:
    lib.filterAttrs (
      n: v:
      !(builtins.isFunction v)
      && !(builtins.isAttrs v && !(v ? outPath) && !(v ? __toString))
      && !(builtins.elem n [ "passthru" "meta" "env" "pos" "__structuredAttrs" ])
    ) attrs;
  flat = v: if builtins.isList v then lib.flatten v else v;

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

  # A value substituted into a hook or file, as nixpkgs' substitutions do: a path is copied into the
  # store (the sandbox sees nothing else), anything else becomes its string.
  substitution = v: if builtins.isPath v then "${v}" else toString v;

  # stdenv.mkDerivation: attrs or (finalAttrs: attrs); overrideAttrs takes (old: ...) or (final: old: ...).
  mkDerivation =
    attrsOrFn:
    let
      toFn = x: if builtins.isFunction x then x else (_: x);
      make =
        fn:
        let
          attrs = fn self;
          name = attrs.name or "${attrs.pname}-${attrs.version}";
          passthru = attrs.passthru or { };
          drvArgs =
            lib.mapAttrs (_: flat) (forDerivation attrs)
            // (attrs.env or { })
            // {
              inherit name system;
              builder = bash;
              args = [ ./setup.sh ];
              stdenvSetup = ./setup.sh;
            };
          drv = if unfreeRefused attrs self then refuseUnfree name else derivation drvArgs;
          outputs = attrs.outputs or [ "out" ];
          # The result's attribute names must not depend on attribute values (uv2nix reads
          # finalAttrs.src while computing nativeBuildInputs), so the outputs are spelled out.
          self =
            attrs
            // passthru
            // lib.genAttrs outputs (
              o:
              self
              // {
                outPath = drv.${o}.outPath;
                outputName = o;
              }
            )
            // {
              type = "derivation";
              inherit (drv) drvPath outPath;
              outputName = builtins.head outputs;
              all = map (o: self.${o}) outputs;
              inherit name passthru system;
              finalPackage = self;
              meta = attrs.meta or { };
              overrideAttrs =
                f:
                make (
                  final:
                  let
                    prev = fn final;
                    step = if builtins.isFunction f then f prev else f;
                    ext = if builtins.isFunction step then f final prev else step;
                  in
                  prev // ext
                );
            };
        in
        self;
    in
    make (toFn attrsOrFn);

  hostLibDirs = [
    "/lib/x86_64-linux-gnu"
    "/usr/lib/x86_64-linux-gnu"
    "/lib/aarch64-linux-gnu"
    "/usr/lib/aarch64-linux-gnu"
    "/lib64"
    "/lib"
    "/usr/lib"
  ];

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
      inherit mkDerivation system;
      shell = bash;
      cc.cc.lib = final.gccLib;
      cc.libc = final.glibc;
    };

    # Host libraries in a store folder. Every soname must exist on this machine.
    hostLibs =
      name: sonames:
      mkDerivation {
        inherit name sonames;
        hostLibDirs = hostLibDirs;
        buildCommand = ''
          mkdir -p $out/lib
          for so in $sonames; do
            for d in $hostLibDirs; do
              if [ -e "$d/$so" ]; then ln -s "$(readlink -f "$d/$so")" "$out/lib/$so"; break; fi
            done
            [ -e "$out/lib/$so" ] || { echo "error: this machine has no $so (needed for $name)" >&2; exit 1; }
          done
        '';
      };
    # A nixpkgs package this machine lacks: its sonames are ignored by name (announced) wherever it
    # is a build input, so the build goes on and says what was not linked.
    absentLibs =
      name: sonames:
      mkDerivation {
        inherit name sonames;
        buildCommand = ''
          mkdir -p $out/lib $out/nix-support
          cat > $out/nix-support/setup-hook <<EOF
          echo "stand-in: ${name} is not on this machine (nixpkgs builds it); not linked: $sonames"
          autoPatchelfIgnoreMissingDeps="\''${autoPatchelfIgnoreMissingDeps-} $sonames"
          EOF
          echo "$sonames" > $out/nix-support/absent-libraries
        '';
      };
    # A host program under a store path; absent ones become a script that says so when run.
    hostTool =
      name: programs:
      mkDerivation {
        inherit name programs;
        meta.mainProgram = builtins.head programs;
        meta.platforms = lib.platforms.linux;
        buildCommand = ''
          mkdir -p $out/bin $out/nix-support
          for p in $programs; do
            if found=$(command -v "$p"); then
              ln -s "$found" "$out/bin/$p"
            else
              printf '#!/bin/bash\necho "%s: not installed on the machine that built this (nix/ci/pkgs)" >&2\nexit 127\n' "$p" > "$out/bin/$p"
              chmod +x "$out/bin/$p"
              echo "$p" >> $out/nix-support/absent-programs
            fi
          done
        '';
      };

    glibc =
      final.hostLibs "glibc" [
        "libc.so.6"
        "libm.so.6"
        "libpthread.so.0"
        "libdl.so.2"
        "librt.so.1"
        "libutil.so.1"
        "libmvec.so.1"
        "libresolv.so.2"
        "libanl.so.1"
        (if system == "aarch64-linux" then "ld-linux-aarch64.so.1" else "ld-linux-x86-64.so.2")
      ]
      // {
        pname = "glibc";
        version = "2.36"; # any glibc >= 2.34 selects the same manylinux wheels
        linuxHeaders.version = "6.1";
      };
    gccLib = final.hostLibs "gcc-lib" [
      "libstdc++.so.6"
      "libgcc_s.so.1"
      "libatomic.so.1"
      "libgomp.so.1"
    ];
    zlib = final.hostLibs "zlib" [ "libz.so.1" ];
    pythonManylinuxPackages = rec {
      manylinux2014 = [
        final.glibc
        final.gccLib
      ];
      manylinux2010 = manylinux2014;
      manylinux1 = manylinux2014;
    };

    python3 = final.callPackage ./python.nix { inherit pythonVersion; };
    # The flake names its interpreter; this set has the CI one, so only its own minor version exists.
    python311 =
      if final.python3.pythonVersion == "3.11" then
        final.python3
      else
        throw "nix/ci/pkgs: python311 asked for, but the CI interpreter is ${final.python3.pythonVersion}";
    python3Packages.cython = final.hostTool "cython" [ "cython" ];

    # The pinned uv enters the store at evaluation (by its content), so the sandbox needs no path to it.
    uv =
      let
        uvPath = builtins.getEnv "DEMOD_NIX_UV";
      in
      mkDerivation {
        name = "uv";
        uvBinary =
          if uvPath == "" then
            ""
          else
            builtins.path {
              path = uvPath;
              name = "uv-binary";
            };
        buildCommand = ''
          [ -n "$uvBinary" ] || { echo "error: set DEMOD_NIX_UV to the pinned uv (make .uv/bin/uv)" >&2; exit 1; }
          mkdir -p $out/bin
          cp "$uvBinary" $out/bin/uv
          chmod +x $out/bin/uv
        '';
        meta.mainProgram = "uv";
      };
    unzip = final.hostTool "unzip" [ "unzip" ];
    patchelf = final.hostTool "patchelf" [ "patchelf" ];
    ugrep = final.hostTool "ugrep" [ "ugrep" ];
    clang = final.hostTool "clang" [ "clang" ];
    chromium = final.hostTool "chromium" [ "chromium" ];
    espeak-ng = final.hostTool "espeak-ng" [ "espeak-ng" ];
    nixfmt = final.hostTool "nixfmt" [ "nixfmt" ];
    # nixpkgs' nixfmt-tree is treefmt with nixfmt; neither is on this machine (nix/ci/check.sh
    # evaluates the formatter and says so).
    nixfmt-tree = final.hostTool "nixfmt-tree" [ "treefmt" ];
    coreutils = final.hostTool "coreutils" [ "chgrp" "chmod" "cp" "mkdir" ];
    ruff = final.hostTool "ruff" [ "ruff" ];
    curl = final.hostTool "curl" [ "curl" ];
    ffmpeg-headless = final.hostTool "ffmpeg-headless" [ "ffmpeg" "ffprobe" ];
    # torchcodec's FFmpeg 7 core (nix/wheel-fixups.nix). Debian bookworm ships FFmpeg 5.
    ffmpeg_7-headless = final.hostTool "ffmpeg-7-headless" [ "ffmpeg" ] // {
      lib = final.absentLibs "ffmpeg-7-headless-lib" [
        "libavutil.so.59"
        "libavcodec.so.61"
        "libavformat.so.61"
        "libavdevice.so.61"
        "libavfilter.so.10"
        "libswscale.so.8"
        "libswresample.so.5"
      ];
    };
    cacert = final.hostLibs "nss-cacert" [ ];

    # Nix's own fetcher: downloads once into the store, by the lock's URL and hash.
    fetchurl =
      {
        url,
        hash ? "",
        sha256 ? "",
        name ? baseNameOf url,
        ...
      }:
      let
        d = import <nix/fetchurl.nix> {
          inherit url name;
          hash = if hash != "" then hash else "";
          sha256 = if hash == "" then sha256 else "";
        };
      in
      d
      // {
        inherit url;
        passthru.url = url;
      };

    runCommand =
      name: env: script:
      mkDerivation (
        {
          inherit name;
          buildCommand = script;
          passAsFile = [ "buildCommand" ] ++ (env.passAsFile or [ ]);
        }
        // builtins.removeAttrs env [ "passAsFile" ]
      );
    runCommandLocal = final.runCommand;
    writeTextFile =
      {
        name,
        text,
        executable ? false,
        destination ? "",
      }:
      final.runCommand name
        {
          inherit text;
          passAsFile = [ "text" ];
          isExecutable = executable;
        }
        ''
          target=$out${destination}
          mkdir -p "$(dirname "$target")"
          printf '%s' "$text" > "$target"
          if [ -n "$isExecutable" ]; then chmod +x "$target"; fi
        '';
    writeText = name: text: final.writeTextFile { inherit name text; };
    writeShellScript =
      name: text:
      final.writeTextFile {
        inherit name;
        executable = true;
        text = "#!${bash}\n${text}\n";
      };
    writeShellScriptBin =
      name: text:
      final.writeTextFile {
        inherit name;
        executable = true;
        destination = "/bin/${name}";
        text = "#!${bash}\n${text}\n";
      };
    symlinkJoin =
      {
        name,
        paths,
        postBuild ? "",
        ...
      }@args:
      final.runCommand name (builtins.removeAttrs args [ "name" "paths" "postBuild" ] // { inherit paths; }) ''
        mkdir -p $out
        for p in $paths; do cp -rs --no-preserve=mode "$p/." $out/; done
        ${postBuild}
      '';
    linkFarm =
      name: entries:
      let
        list = if builtins.isList entries then entries else lib.mapAttrsToList (name: path: { inherit name path; }) entries;
      in
      final.runCommand name { } (
        "mkdir -p $out\n"
        + lib.concatMapStrings (e: ''
          mkdir -p "$(dirname "$out/${e.name}")"
          ln -s ${e.path} "$out/${e.name}"
        '') list
      );

    makeSetupHook =
      {
        name,
        substitutions ? { },
        propagatedBuildInputs ? [ ],
        deps ? [ ],
        passthru ? { },
        meta ? { },
      }:
      script:
      let
        keys = builtins.attrNames substitutions;
        text = builtins.replaceStrings (map (k: "@${k}@") keys) (
          map (k: substitution substitutions.${k}) keys
        ) (builtins.readFile script);
      in
      mkDerivation {
        inherit name passthru meta;
        hookText = text;
        passAsFile = [ "hookText" ];
        propagated = propagatedBuildInputs ++ deps;
        buildCommand = ''
          mkdir -p $out/nix-support
          cp "$hookTextPath" $out/nix-support/setup-hook
          if [ -n "$propagated" ]; then echo "$propagated" > $out/nix-support/propagated-build-inputs; fi
        '';
      };
    replaceVars =
      script: replacements:
      let
        keys = builtins.attrNames replacements;
      in
      final.writeText (baseNameOf script) (
        builtins.replaceStrings (map (k: "@${k}@") keys) (map (k: substitution replacements.${k}) keys) (
          builtins.readFile script
        )
      );

    autoPatchelfHook = final.makeSetupHook {
      name = "auto-patchelf-hook";
      propagatedBuildInputs = [ final.patchelf ];
      substitutions = {
        python = final.python3.interpreter;
        script = "${./hooks/auto-patchelf.py}"; # a store path: the sandbox sees only the store
      };
    } ./hooks/auto-patchelf-hook.sh;
    makeWrapper = final.makeSetupHook { name = "make-shell-wrapper-hook"; } ./hooks/make-wrapper.sh;
    addDriverRunpath.driverLink = "/run/opengl-driver";
    # nixpkgs' autoAddDriverRunpath: the driver's lib folder joins every ELF file's run path.
    autoAddDriverRunpath = final.makeSetupHook {
      name = "auto-add-driver-runpath-hook";
      propagatedBuildInputs = [ final.patchelf ];
    } ./hooks/auto-add-driver-runpath.sh;

    # nixpkgs' mkShell refuses to be built; its inputDerivation builds every input.
    mkShell =
      {
        name ? "nix-shell",
        packages ? [ ],
        inputsFrom ? [ ],
        shellHook ? "",
        ...
      }@args:
      let
        rest = builtins.removeAttrs args [ "packages" "inputsFrom" ];
        shell = mkDerivation (
          rest
          // {
            inherit name shellHook;
            nativeBuildInputs = (args.nativeBuildInputs or [ ]) ++ packages;
            buildCommand = ''
              echo "This derivation is not meant to be built, unless you want to capture the dependency closure." >&2
              exit 1
            '';
          }
        );
      in
      shell
      // {
        inherit packages shellHook;
        inputDerivation = final.runCommand "${name}-inputs" {
          nativeBuildInputs = packages;
          inherit shellHook;
          passAsFile = [ "shellHook" ];
        } ''
          mkdir -p $out
          export > $out/environment
          cp "$shellHookPath" $out/shell-hook
          echo "$nativeBuildInputs" | tr ' ' '\n' > $out/packages
        '';
      };

    # YAML is a superset of JSON.
    formats.yaml = _: {
      type = lib.types.attrsOf lib.types.anything;
      generate =
        name: value:
        (final.writeText name (builtins.toJSON value))
        // {
          passthru.value = value;
        };
    };

    # Not buildable with this set: the flake's images and VM test evaluate, and building them
    # fails saying why (nix/ci/check.sh lists them as not built here).
    notHere =
      what: args:
      mkDerivation {
        name = args.name or what;
        passthru = args // {
          notBuildableHere = what;
        };
        buildCommand = ''
          echo "error: ${what} is not in nix/ci/pkgs (it needs nixpkgs itself); build it where nixpkgs is available" >&2
          exit 1
        '';
      };
    testers.runNixOSTest = args: final.notHere "testers.runNixOSTest (a NixOS VM; needs nixpkgs and KVM)" args;
    dockerTools = {
      streamLayeredImage =
        args:
        (final.notHere "dockerTools.streamLayeredImage" args)
        // {
          imageName = args.name;
          imageTag = args.tag or "latest";
          inherit (args) config;
          contents = args.contents or [ ];
          extraCommands = args.extraCommands or "";
          fakeRootCommands = args.fakeRootCommands or "";
        };
      buildLayeredImage = final.dockerTools.streamLayeredImage;
      binSh = final.hostTool "bin-sh" [ "sh" ];
      usrBinEnv = final.hostTool "usr-bin-env" [ "env" ];
      caCertificates = final.cacert;
    };
  };

  pkgs = lib.fix (lib.foldl' (acc: overlay: lib.extends overlay acc) base overlays);
in
pkgs
