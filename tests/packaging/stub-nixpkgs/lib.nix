# A small stand-in for the parts of nixpkgs' `lib` that flake.nix and nix/*.nix
# call. Written for these tests only: each function does what the real one does
# for the inputs used here, so evaluating our files against it shows what they
# would hand to nixpkgs (image config, systemd unit, checks) without nixpkgs.
let
  lib = rec {
    inherit (builtins)
      attrNames
      attrValues
      concatMap
      concatStringsSep
      elem
      filter
      head
      mapAttrs
      ;

    fix = f: let x = f x; in x;
    foldl = builtins.foldl';
    foldr = op: nul: list: builtins.foldl' (acc: x: op x acc) nul (lib.reverseList list);
    reverseList = l: builtins.genList (i: builtins.elemAt l (builtins.length l - 1 - i)) (builtins.length l);
    genAttrs = names: f: builtins.listToAttrs (map (n: { name = n; value = f n; }) names);
    unique = builtins.foldl' (acc: x: if builtins.elem x acc then acc else acc ++ [ x ]) [ ];
    optionals = cond: list: if cond then list else [ ];
    optional = cond: x: if cond then [ x ] else [ ];
    optionalAttrs = cond: set: if cond then set else { };
    optionalString = cond: s: if cond then s else "";

    recursiveUpdate =
      lhs: rhs:
      lhs
      // builtins.mapAttrs (
        n: v:
        if builtins.isAttrs v && builtins.isAttrs (lhs.${n} or null) && !(v ? outPath) then
          recursiveUpdate lhs.${n} v
        else
          v
      ) rhs;

    composeExtensions =
      f: g: final: prev:
      let
        fApplied = f final prev;
        prev' = prev // fApplied;
      in
      fApplied // g final prev';
    composeManyExtensions = builtins.foldl' composeExtensions (final: prev: { });

    getExe = drv: "${drv}/bin/${drv.meta.mainProgram}";
    makeBinPath = drvs: concatStringsSep ":" (map (d: "${d}/bin") drvs);
    escapeShellArg = s: "'" + builtins.replaceStrings [ "'" ] [ "'\\''" ] (toString s) + "'";
    escapeShellArgs = args: concatStringsSep " " (map escapeShellArg args);
    literalExpression = text: { _type = "literalExpression"; inherit text; };

    # Module system: options and conditionals as plain data (see eval-module.nix).
    mkOption = args: args // { _type = "option"; };
    mkEnableOption = name: mkOption {
      type = types.bool;
      default = false;
      description = "Whether to enable ${name}.";
    };
    mkIf = condition: content: { _type = "if"; inherit condition content; };
    mkDefault = value: { _type = "override"; priority = 1000; content = value; };
    types =
      let
        t = name: { _type = "type"; inherit name; };
      in
      {
        bool = t "bool";
        str = t "str";
        port = t "port";
        package = t "package";
        path = t "path";
        nullOr = inner: t "nullOr ${inner.name}";
        listOf = inner: t "listOf ${inner.name}";
        attrsOf = inner: t "attrsOf ${inner.name}";
      };

    fileset = {
      unions = list: { _type = "fileset"; members = list; };
      maybeMissing = path: if builtins.pathExists path then path else null;
      toSource = { root, fileset }: { outPath = toString root; _type = "source"; inherit fileset; };
    };

    meta.availableOn = platform: pkg: builtins.elem platform.system (pkg.meta.platforms or [ platform.system ]);
    licenses = {
      mit = "MIT";
      asl20 = "Apache-2.0";
    };
    platforms.linux = [
      "x86_64-linux"
      "aarch64-linux"
    ];
  };
in
lib
