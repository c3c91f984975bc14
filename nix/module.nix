# NixOS module: services.demod-voice runs `demod-voice serve` as a system
# service with its own user, data directory, settings file and optional GPU.
#
# The flake's nixosModules.default imports this file and makes its own CPU
# package the default; settings use the same keys as config.yaml (docs/config.md) and are written to a YAML
# file in the Nix store, so secrets (API keys) belong in `environmentFile`
# (DEMOD_VOICE_AUTH__KEYS_FILE=..., see docs/nix.md).
{
  config,
  lib,
  pkgs,
  ...
}:

let
  cfg = config.services.demod-voice;
  inherit (lib) mkOption types;
  settingsFormat = pkgs.formats.yaml { };

  # Options the module owns win over the free-form settings.
  effectiveSettings = lib.recursiveUpdate cfg.settings {
    server = {
      inherit (cfg) host port;
    };
    paths = {
      data_dir = "${cfg.dataDir}/data";
      cache_dir = "${cfg.dataDir}/cache";
    };
    device = cfg.settings.device or (if cfg.gpu.enable then "gpu" else "cpu");
  };
  configFile = settingsFormat.generate "demod-voice.yaml" effectiveSettings;

  # GPU devices the service may open, by device class in /proc/devices: every
  # /dev/nvidia* node (any number of GPUs), the unified memory and capability
  # nodes, and DRI render nodes.
  gpuDevices = [
    "char-nvidia-frontend"
    "char-nvidia-uvm"
    "char-nvidia-caps"
    "char-drm"
  ];
in
{
  options.services.demod-voice = {
    enable = lib.mkEnableOption "the demod-voice text-to-speech server";

    package = mkOption {
      type = types.package;
      default = pkgs.demod-voice; # from overlays.default; the flake module sets its own
      defaultText = lib.literalExpression "demod-voice from this flake";
      description = "The demod-voice package (the flake's `cpu` or CUDA `default`).";
    };

    host = mkOption {
      type = types.str;
      default = "127.0.0.1";
      description = "Address to listen on.";
    };

    port = mkOption {
      type = types.port;
      default = 5002;
      description = "TCP port to listen on.";
    };

    openFirewall = mkOption {
      type = types.bool;
      default = false;
      description = "Open `port` in the firewall.";
    };

    dataDir = mkOption {
      type = types.str;
      default = "/var/lib/demod-voice";
      description = "State: voices, profiles, models (data/) and caches (cache/).";
    };

    user = mkOption {
      type = types.str;
      default = "demod-voice";
      description = "User the service runs as (created when left at the default).";
    };

    group = mkOption {
      type = types.str;
      default = "demod-voice";
      description = "Group the service runs as (created when left at the default).";
    };

    gpu.enable = mkOption {
      type = types.bool;
      default = false;
      description = "Give the service the GPU devices and run engines on it (`device: gpu`).";
    };

    settings = mkOption {
      type = settingsFormat.type;
      default = { };
      example = {
        piper.default_voice = "en_US-joe-medium";
        auth.required = true;
      };
      description = "demod-voice configuration (config.yaml keys). Stored world-readable in the Nix store.";
    };

    environmentFile = mkOption {
      type = types.nullOr types.str;
      default = null;
      description = "File of DEMOD_VOICE_* variables for secrets, read by systemd at start.";
    };

    configFile = mkOption {
      type = types.path;
      readOnly = true;
      default = configFile;
      defaultText = lib.literalExpression "a YAML file made from settings, host, port and dataDir";
      description = "The generated config file the service reads; `demod-voice --config <it> health` checks it by hand.";
    };

    extraArgs = mkOption {
      type = types.listOf types.str;
      default = [ ];
      description = "Extra arguments for `demod-voice serve`.";
    };
  };

  config = lib.mkIf cfg.enable {
    users.users = lib.mkIf (cfg.user == "demod-voice") {
      demod-voice = {
        isSystemUser = true;
        group = cfg.group;
        home = cfg.dataDir;
        extraGroups = lib.optionals cfg.gpu.enable [
          "video"
          "render"
        ];
      };
    };
    users.groups = lib.mkIf (cfg.group == "demod-voice") { demod-voice = { }; };

    networking.firewall.allowedTCPPorts = lib.optionals cfg.openFirewall [ cfg.port ];

    systemd.tmpfiles.rules = [
      "d ${cfg.dataDir} 0750 ${cfg.user} ${cfg.group} - -"
      "d ${cfg.dataDir}/data 0750 ${cfg.user} ${cfg.group} - -"
      "d ${cfg.dataDir}/cache 0750 ${cfg.user} ${cfg.group} - -"
    ];

    systemd.services.demod-voice = {
      description = "demod-voice text-to-speech server";
      wantedBy = [ "multi-user.target" ];
      after = [ "network.target" ];
      environment = {
        HOME = cfg.dataDir;
        XDG_DATA_HOME = "${cfg.dataDir}/data";
        XDG_CACHE_HOME = "${cfg.dataDir}/cache";
      }
      // lib.optionalAttrs cfg.gpu.enable {
        # nixpkgs' CUDA libraries find the NixOS driver here.
        LD_LIBRARY_PATH = "/run/opengl-driver/lib";
      };
      serviceConfig = {
        ExecStart = lib.escapeShellArgs (
          [
            (lib.getExe cfg.package)
            "--config"
            "${cfg.configFile}"
            "serve"
          ]
          ++ cfg.extraArgs
        );
        User = cfg.user;
        Group = cfg.group;
        WorkingDirectory = cfg.dataDir;
        Restart = "on-failure";
        RestartSec = 5;
        EnvironmentFile = lib.optionals (cfg.environmentFile != null) [ cfg.environmentFile ];
        # Hardening: the service sees its data directory and little else.
        NoNewPrivileges = true;
        ProtectSystem = "strict";
        ProtectHome = true;
        PrivateTmp = true;
        ReadWritePaths = [ cfg.dataDir ];
        ProtectKernelTunables = true;
        ProtectKernelModules = true;
        ProtectControlGroups = true;
        RestrictSUIDSGID = true;
        LockPersonality = true;
        RestrictAddressFamilies = [
          "AF_INET"
          "AF_INET6"
          "AF_UNIX"
        ];
        PrivateDevices = !cfg.gpu.enable;
        DevicePolicy = if cfg.gpu.enable then "closed" else "auto";
        DeviceAllow = lib.optionals cfg.gpu.enable (map (d: "${d} rw") gpuDevices);
        SupplementaryGroups = lib.optionals cfg.gpu.enable [
          "video"
          "render"
        ];
      };
    };
  };
}
