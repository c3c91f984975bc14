# NixOS module: services.demod-voice.instances.<name> runs `demod-voice serve`
# once per instance, each with its own port(s), settings, state and cache
# directories, optional GPU, and voices/models pinned in the Nix store (fetched
# by ./models.nix from the model registry's manifest). Every instance runs
# offline: it never downloads anything at run time.
#
# Settings use the same keys as config.yaml (docs/config.md) and land in a YAML
# file in the Nix store, so secrets (API keys) belong in `environmentFile`
# (DEMOD_VOICE_API_KEYS=user:key,..., see docs/nix.md).
#
# The old single-instance options (services.demod-voice.enable, host, port, ...)
# still work: they define the instance `default` and print a deprecation warning.
{
  config,
  lib,
  pkgs,
  ...
}:

let
  cfg = config.services.demod-voice;
  # Home Assistant's group where it runs on this machine (NixOS: services.home-assistant).
  hassGroup = if config.services.home-assistant.enable or false then "hass" else null;
  inherit (lib) mkOption types;
  settingsFormat = pkgs.formats.yaml { };
  registry = pkgs.callPackage ./models.nix { inherit (cfg) extraModels; };

  enabledInstances = lib.filterAttrs (_: inst: inst.enable) cfg.instances;

  # "tcp://HOST:PORT" or "unix://PATH": what `serve --wyoming` accepts.
  wyomingUri = types.strMatching "(tcp://[^/]+:[0-9]+|unix:///.+)";
  wyomingPort =
    uri:
    let
      m = builtins.match "tcp://.*:([0-9]+)" uri;
    in
    if m == null then null else lib.toInt (builtins.head m);

  # A list of names, empty by default.
  strings =
    example: description:
    mkOption {
      type = types.listOf types.str;
      default = [ ];
      inherit example description;
    };

  # Settings without the typed options left unset (null) and the sections that leaves empty.
  prune =
    value:
    if builtins.isAttrs value then
      lib.filterAttrs (_: v: v != null && v != { }) (lib.mapAttrs (_: prune) value)
    else
      value;

  stateDir = name: "/var/lib/demod-voice/${name}";
  cacheDir = name: "/var/cache/demod-voice/${name}";

  # The NVIDIA device nodes, by device class (/proc/devices), as nixpkgs' faster-whisper module
  # does: systemd drops a path rule whose node does not exist when the unit starts, and
  # /dev/nvidia-uvm(-tools) appear only when the first CUDA process loads nvidia-uvm.
  # char-nvidia-frontend is /dev/nvidia<N>, nvidiactl and nvidia-modeset (major 195) of every GPU:
  # the device cgroup cannot pick one GPU by class, so gpu.device picks it for CUDA through
  # CUDA_VISIBLE_DEVICES (below), which is a selection, not an isolation boundary.
  gpuDeviceRules = [
    "char-nvidia-frontend rw"
    "char-nvidia-ctl rw"
    "char-nvidia-uvm rw"
    "char-nvidia-caps rw"
  ];

  # One ExecStart argument as systemd reads it: quoted, with `%` and `$` kept literal
  # (systemd expands specifiers and variables there; a shell's quoting does not stop it).
  escapeSystemdArg =
    arg: builtins.replaceStrings [ "%" "$" ] [ "%%" "$$" ] (builtins.toJSON (toString arg));
  escapeSystemdArgs = args: lib.concatMapStringsSep " " escapeSystemdArg args;

  # A unix:// Wyoming socket lives in the instance's RuntimeDirectory (/run/demod-voice/<name>),
  # the one place under ProtectSystem=strict where its dynamic user can create it.
  runtimeDir = name: "/run/demod-voice/${name}";
  socketPath = uri: lib.removePrefix "unix://" uri;
  isUnix = uri: uri != null && lib.hasPrefix "unix://" uri;

  instanceModule =
    { name, config, ... }:
    {
      options = {
        enable = lib.mkEnableOption "this demod-voice instance" // {
          default = true;
        };

        package = mkOption {
          type = types.package;
          default = cfg.package;
          defaultText = lib.literalExpression "config.services.demod-voice.package";
          description = "The demod-voice package (the flake's `cpu` or CUDA `default`).";
        };

        host = mkOption {
          type = types.str;
          default = "127.0.0.1";
          description = "Address the HTTP API listens on.";
        };

        port = mkOption {
          type = types.ints.between 1 65535;
          default = 5002;
          description = "TCP port of the HTTP API.";
        };

        http = mkOption {
          type = types.bool;
          default = true;
          description = "Serve the HTTP API. Off: Wyoming only (`serve --no-http`).";
        };

        wyoming = mkOption {
          type = types.nullOr wyomingUri;
          default = null;
          example = "tcp://0.0.0.0:10200";
          description = "Also speak the Wyoming protocol (Home Assistant) here: `tcp://HOST:PORT` or `unix:///PATH`.";
        };

        openFirewall = mkOption {
          type = types.bool;
          default = false;
          description = "Open the HTTP port and the Wyoming TCP port in the firewall.";
        };

        settings = mkOption {
          default = { };
          example = {
            piper.default_voice = "en_US-joe-medium";
            auth.required = true;
          };
          description = "demod-voice configuration (config.yaml keys, docs/config.md). World-readable in the Nix store.";
          type = types.submodule {
            freeformType = settingsFormat.type;
            options = {
              device = mkOption {
                type = types.enum [
                  "auto"
                  "cpu"
                  "gpu"
                ];
                default = if config.gpu.device == null then "cpu" else "gpu";
                defaultText = lib.literalExpression ''if gpu.device == null then "cpu" else "gpu"'';
                description = "Where engines run.";
              };
              # Typed, but written only when set: demod-voice's own defaults apply otherwise.
              auth.required = mkOption {
                type = types.nullOr types.bool;
                default = null;
                description = "Refuse requests without a valid API key (keys: DEMOD_VOICE_API_KEYS in `environmentFile`).";
              };
              piper.default_voice = mkOption {
                type = types.nullOr types.str;
                default = null;
                example = "en_US-joe-medium";
                description = "Voice used when a request names none.";
              };
              stt.model = mkOption {
                type = types.nullOr types.str;
                default = null;
                example = "whisper-base.en";
                description = "Speech-to-text model (a registry name: list it in `models` to pin it in the store).";
              };
            };
          };
        };

        environmentFile = mkOption {
          type = types.nullOr types.str;
          default = null;
          example = "/run/secrets/demod-voice.env";
          description = "File of DEMOD_VOICE_* variables (API keys: DEMOD_VOICE_API_KEYS=user:key,...), read by systemd at start.";
        };

        socketGroup = mkOption {
          type = types.nullOr types.str;
          default = hassGroup;
          defaultText = lib.literalExpression ''if config.services.home-assistant.enable then "hass" else null'';
          example = "hass";
          description = ''
            Group that may connect to a `unix://` Wyoming socket (mode 0660). Its folder
            (/run/demod-voice/<name>) gets this group with mode 2750, so the socket inherits it.
            null: only the instance's own (dynamic) user can connect.
          '';
        };

        gpu.device = mkOption {
          type = types.nullOr types.ints.unsigned;
          default = null;
          example = 0;
          description = ''
            The GPU this instance uses: its index as `nvidia-smi` lists it (PCI bus order), or null
            for CPU only. The unit may open every NVIDIA device node (device classes); CUDA sees only
            this GPU (CUDA_VISIBLE_DEVICES with CUDA_DEVICE_ORDER=PCI_BUS_ID).
          '';
        };

        voices = strings [ "en_US-lessac-medium" ] "Piper voices from the model registry, fetched into the Nix store (fixed-output derivations).";
        models = strings [ "xtts-v2" ] "Models from the model registry (xtts-v2, rvc-aux, ...), fetched into the Nix store.";
        acceptLicenses = strings [ "coqui-public-model-license" ] "Licences of gated models you accept (XTTS-v2: coqui-public-model-license, non-commercial).";
        extraArgs = strings [ "--preload" ] "Extra arguments for `demod-voice serve`.";

        configFile = mkOption {
          type = types.path;
          readOnly = true;
          description = "The generated config file this instance reads.";
        };

        stateDir = mkOption {
          type = types.str;
          readOnly = true;
          default = stateDir name;
          description = "State: voices, profiles, models, licences (systemd StateDirectory).";
        };

        cacheDir = mkOption {
          type = types.str;
          readOnly = true;
          default = cacheDir name;
          description = "Caches: audio, XTTS latents (systemd CacheDirectory).";
        };
      };

      config.configFile = settingsFormat.generate "demod-voice-${name}.yaml" (
        lib.recursiveUpdate (prune config.settings) {
          # What the module owns wins over free-form settings.
          server = {
            inherit (config) host port;
          };
          paths = {
            data_dir = config.stateDir;
            cache_dir = config.cacheDir;
            voices = (config.settings.paths.voices or [ ]) ++ map (v: "${registry.fetchVoice v}") config.voices;
          };
          models.offline = true;
        }
      );
    };

  # Pinned models are copied (not linked) into the state directory: coqui-tts
  # rewrites XTTS-v2's model.pth on first load, so the folder must be writable.
  # A stamp holding the store path makes later starts skip the copy.
  installModels =
    name: inst:
    pkgs.writeShellScript "demod-voice-${name}-models" (
      lib.concatMapStrings (model: ''
        dest=${lib.escapeShellArg "${inst.stateDir}/models/${model}"}
        src=${registry.fetch model}
        if [ "$(cat "$dest/.nix-store-path" 2>/dev/null)" != "$src" ]; then
          rm -rf "$dest.tmp" && mkdir -p "$dest.tmp"
          cp -rL --no-preserve=mode "$src/." "$dest.tmp/"
          echo "$src" > "$dest.tmp/.nix-store-path"
          rm -rf "$dest" && mv "$dest.tmp" "$dest"
        fi
      '') inst.models
    );

  unitFor =
    name: inst:
    lib.nameValuePair "demod-voice-${name}" {
      description = "demod-voice text-to-speech server (${name})";
      wantedBy = [ "multi-user.target" ];
      after = [ "network-online.target" ];
      wants = [ "network-online.target" ];
      environment = {
        HOME = inst.stateDir;
        XDG_DATA_HOME = inst.stateDir;
        XDG_CACHE_HOME = inst.cacheDir;
        # Nothing is fetched at run time: voices and models come from the store.
        DEMOD_VOICE_OFFLINE = "1";
        HF_HUB_OFFLINE = "1";
      }
      // lib.optionalAttrs (inst.gpu.device != null) {
        # gpu.device is nvidia-smi's index, which counts in PCI bus order; CUDA's own default
        # order is fastest first, so it is told to count the same way. Every GPU's node is open
        # to the unit (gpuDeviceRules), so index N here is the same GPU as nvidia-smi's N.
        CUDA_DEVICE_ORDER = "PCI_BUS_ID";
        CUDA_VISIBLE_DEVICES = toString inst.gpu.device;
      };
      serviceConfig = {
        ExecStartPre =
          # "+": with full privileges, outside the sandbox: the dynamic user cannot give its folder
          # another group. setgid: the socket created inside gets the folder's group.
          lib.optionals (isUnix inst.wyoming && inst.socketGroup != null) [
            "+${pkgs.coreutils}/bin/chgrp ${inst.socketGroup} ${runtimeDir name}"
            "+${pkgs.coreutils}/bin/chmod 2750 ${runtimeDir name}"
          ]
          ++ lib.optionals (inst.models != [ ]) [ (installModels name inst) ];
        ExecStart = escapeSystemdArgs (
          [
            (lib.getExe inst.package)
            "--config"
            "${inst.configFile}"
            "serve"
          ]
          ++ lib.optionals (inst.wyoming != null) [
            "--wyoming"
            inst.wyoming
          ]
          ++ lib.optional (!inst.http) "--no-http"
          ++ inst.extraArgs
        );
        EnvironmentFile = lib.optionals (inst.environmentFile != null) [ inst.environmentFile ];
        Restart = "on-failure";
        RestartSec = 5;

        # A throwaway user per instance; state and cache owned by it.
        DynamicUser = true;
        StateDirectory = "demod-voice/${name}";
        StateDirectoryMode = "0700";
        CacheDirectory = "demod-voice/${name}";
        CacheDirectoryMode = "0700";
        # The unix:// Wyoming socket's folder. With socketGroup it becomes 2750 with that group
        # (ExecStartPre) and demod-voice creates the socket 0660 (wyoming.socket_mode), whatever
        # UMask says: the group (Home Assistant) can connect, others cannot reach it.
        RuntimeDirectory = "demod-voice/${name}";
        RuntimeDirectoryMode = if isUnix inst.wyoming && inst.socketGroup != null then "2750" else "0755";
        WorkingDirectory = inst.stateDir;
        UMask = "0077";

        # Hardening, as services.wyoming.piper and more.
        CapabilityBoundingSet = "";
        NoNewPrivileges = true;
        PrivateTmp = true;
        PrivateUsers = true;
        PrivateDevices = inst.gpu.device == null;
        DevicePolicy = "closed";
        DeviceAllow = lib.optionals (inst.gpu.device != null) gpuDeviceRules;
        SupplementaryGroups = lib.optionals (inst.gpu.device != null) [
          "video"
          "render"
        ];
        ProtectClock = true;
        ProtectControlGroups = true;
        ProtectHome = true;
        ProtectHostname = true;
        ProtectKernelLogs = true;
        ProtectKernelModules = true;
        ProtectKernelTunables = true;
        ProtectProc = "invisible";
        # psutil, torch and Ray read /proc/meminfo, /proc/cpuinfo and /proc/stat.
        ProcSubset = "all";
        ProtectSystem = "strict";
        RemoveIPC = true;
        RestrictNamespaces = true;
        RestrictRealtime = true;
        RestrictSUIDSGID = true;
        LockPersonality = true;
        # AF_NETLINK: psutil and Ray list network interfaces (getifaddrs).
        RestrictAddressFamilies = [
          "AF_INET"
          "AF_INET6"
          "AF_UNIX"
          "AF_NETLINK"
        ];
        SystemCallArchitectures = "native";
        SystemCallFilter = [
          "@system-service"
          "~@privileged"
        ];
        # The one exception the engines need: tinygrad loads the machine code it
        # compiles with clang, torch's JIT and the CUDA driver map memory
        # writable and executable, and onnxruntime's CUDA provider does the same.
        MemoryDenyWriteExecute = false;
      };
    };

  # Names the registry does not know, or licences not accepted: one message each.
  checksFor =
    name: inst:
    [
      {
        assertion = inst.gpu.device == null || (inst.package.cudaSupport or false);
        message = "services.demod-voice.instances.${name}.gpu.device is set, but its package (${inst.package.name}) is the CPU build; set services.demod-voice.instances.${name}.package (or services.demod-voice.package) to a CUDA one, e.g. demod-voice.packages.\${system}.default";
      }
      {
        assertion = !(isUnix inst.wyoming) || lib.hasPrefix "${runtimeDir name}/" (socketPath inst.wyoming);
        message = "services.demod-voice.instances.${name}.wyoming: a unix socket must be in ${runtimeDir name}/ (the instance's RuntimeDirectory), e.g. unix://${runtimeDir name}/wyoming.sock";
      }
    ]
    ++ map (v: {
      assertion = builtins.elem v registry.voiceNames;
      message = "services.demod-voice.instances.${name}.voices: unknown voice '${v}'; the model registry's Piper voices are: ${
        if registry.voiceNames == [ ] then "(none pinned yet; add one with services.demod-voice.extraModels)" else lib.concatStringsSep ", " registry.voiceNames
      }";
    }) inst.voices
    ++ map (m: {
      assertion = builtins.elem m registry.modelNames;
      message = "services.demod-voice.instances.${name}.models: unknown model '${m}'; the model registry knows: ${lib.concatStringsSep ", " registry.modelNames}";
    }) inst.models
    ++ map (
      m:
      let
        entry = registry.models.${m};
      in
      {
        assertion = !(entry.license_gate or false) || builtins.elem entry.license_id inst.acceptLicenses;
        message = "services.demod-voice.instances.${name}.models: ${m} is licensed under the ${entry.license} (${entry.license_url}); read it, then set services.demod-voice.instances.${name}.acceptLicenses = [ \"${entry.license_id}\" ];";
      }
    ) (builtins.filter (m: registry.models ? ${m}) (inst.models ++ inst.voices))
    ++ map (
      m:
      let
        unpinned = map (f: f.path) (builtins.filter (f: f.sha256 or null == null) registry.models.${m}.files);
      in
      {
        assertion = unpinned == [ ];
        message = "services.demod-voice.instances.${name}: ${m} cannot be pinned in the Nix store: the registry has no sha256 for ${lib.concatStringsSep ", " unpinned}; pin them (docs/models.md) or pull it at run time without this module";
      }
    ) (builtins.filter (m: registry.models ? ${m}) (inst.models ++ inst.voices));

  # Ports taken by more than one instance would make one of them fail at start.
  portsOf =
    inst:
    lib.optional inst.http inst.port
    ++ lib.optional (inst.wyoming != null && wyomingPort inst.wyoming != null) (wyomingPort inst.wyoming);
  allPorts = lib.concatMap portsOf (lib.attrValues enabledInstances);

  legacyIsSet = cfg.enable;
  deprecated =
    replacement: type: default:
    mkOption {
      inherit type default;
      description = "Deprecated: services.demod-voice.instances.default.${replacement}.";
    };
  ignored = mkOption {
    type = types.nullOr types.str;
    default = null;
    description = "Deprecated and ignored: each instance runs as its own dynamic user with state in /var/lib/demod-voice/<name>.";
  };
in
{
  options.services.demod-voice = {
    # pkgs.demod-voice comes from the flake's overlays.default; the flake's module sets its own
    # package, so this default (and its "cannot be found" message) matters only without either.
    package = lib.mkPackageOption pkgs "demod-voice" {
      extraDescription = "Instances use it unless they name their own; the flake's module sets its `cpu` package.";
    };

    instances = mkOption {
      type = types.attrsOf (types.submodule instanceModule);
      default = { };
      description = "demod-voice servers, each with its own ports, settings, state, voices and models.";
    };

    extraModels = mkOption {
      type = types.attrsOf (types.attrsOf types.anything);
      default = { };
      description = ''
        Extra model registry entries (the fields of demod_voice/models_manifest.json, e.g. your own
        pinned Piper voices), usable in `voices`/`models` like the built-in ones.
      '';
    };

    # --- deprecated: the single instance of earlier versions, now instances.default ---
    enable = lib.mkEnableOption "the demod-voice server (deprecated: use services.demod-voice.instances.<name>)";
    host = deprecated "host" types.str "127.0.0.1";
    port = deprecated "port" (types.ints.between 1 65535) 5002;
    openFirewall = deprecated "openFirewall" types.bool false;
    gpu.enable = deprecated "gpu.device = 0" types.bool false;
    settings = deprecated "settings" settingsFormat.type { };
    environmentFile = deprecated "environmentFile" (types.nullOr types.str) null;
    extraArgs = deprecated "extraArgs" (types.listOf types.str) [ ];
    # Instances run as a DynamicUser with systemd-managed directories: these no longer apply.
    dataDir = ignored;
    user = ignored;
    group = ignored;
  };

  config = lib.mkMerge [
    (lib.mkIf legacyIsSet {
      warnings = [
        "services.demod-voice.enable and its single-instance options are deprecated; they now define services.demod-voice.instances.default (state in /var/lib/demod-voice/default). Move them there."
      ]
      ++ map (opt: "services.demod-voice.${opt} is ignored: instances run as a dynamic user with state in /var/lib/demod-voice/<name>.") (
        builtins.filter (opt: cfg.${opt} != null) [
          "dataDir"
          "user"
          "group"
        ]
      );
      services.demod-voice.instances.default = {
        inherit (cfg)
          host
          port
          openFirewall
          settings
          environmentFile
          extraArgs
          ;
        gpu.device = if cfg.gpu.enable then 0 else null;
      };
    })

    (lib.mkIf (enabledInstances != { }) {
      assertions =
        lib.concatLists (lib.mapAttrsToList checksFor enabledInstances)
        ++ [
          {
            assertion = lib.length allPorts == lib.length (lib.unique allPorts);
            message = "services.demod-voice.instances: two instances use the same port (${
              lib.concatMapStringsSep ", " toString allPorts
            })";
          }
        ];

      systemd.services = lib.mapAttrs' unitFor enabledInstances;

      networking.firewall.allowedTCPPorts = lib.concatMap portsOf (
        lib.attrValues (lib.filterAttrs (_: inst: inst.openFirewall) enabledInstances)
      );
    })
  ];
}
