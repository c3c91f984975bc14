# Typed stand-ins for the NixOS options nix/module.nix sets, declared as NixOS
# declares them (same names and types), so lib.evalModules merges and checks the
# module's definitions as a NixOS system would. Only what the module touches.
{ lib, ... }:
let
  inherit (lib) mkOption types;
  # systemd's unit option values (nixos/lib/systemd-types.nix: unitOption).
  unitValue = types.oneOf [
    types.bool
    types.int
    types.str
    types.path
    types.package
    (types.listOf (
      types.oneOf [
        types.bool
        types.int
        types.str
        types.path
        types.package
      ]
    ))
  ];
in
{
  options = {
    assertions = mkOption {
      type = types.listOf (
        types.submodule {
          options.assertion = mkOption { type = types.bool; };
          options.message = mkOption { type = types.str; };
        }
      );
      default = [ ];
    };
    warnings = mkOption {
      type = types.listOf types.str;
      default = [ ];
    };
    # Read by the module (socketGroup's default), set by the tests.
    services.home-assistant.enable = mkOption {
      type = types.bool;
      default = false;
    };
    networking.firewall.allowedTCPPorts = mkOption {
      type = types.listOf types.port;
      default = [ ];
    };
    systemd.services = mkOption {
      default = { };
      type = types.attrsOf (
        types.submodule {
          options = {
            description = mkOption {
              type = types.str;
              default = "";
            };
            wantedBy = mkOption {
              type = types.listOf types.str;
              default = [ ];
            };
            after = mkOption {
              type = types.listOf types.str;
              default = [ ];
            };
            wants = mkOption {
              type = types.listOf types.str;
              default = [ ];
            };
            environment = mkOption {
              type = types.attrsOf (
                types.nullOr (
                  types.oneOf [
                    types.str
                    types.path
                    types.package
                  ]
                )
              );
              default = { };
            };
            serviceConfig = mkOption {
              type = types.attrsOf unitValue;
              default = { };
            };
          };
        }
      );
    };
  };
}
