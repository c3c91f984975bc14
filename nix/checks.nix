# What `nix flake check` runs: the test suite, the CLI's --help and health,
# a deterministic Piper synthesis, and (when a module is given) a NixOS VM test
# of services.demod-voice. Also demod-voice's passthru.tests.
{
  lib,
  runCommand,
  testers,
  demod-voice,
  devEnv, # the interpreter with every test dependency (./python-env.nix)
  src,
  nixosModule ? null,
}:

let
  exe = lib.getExe demod-voice;

  # Each check runs with its own throw-away HOME so XDG dirs are writable.
  check =
    name: script:
    runCommand "demod-voice-${name}" { nativeBuildInputs = [ demod-voice ]; } ''
      export HOME=$(mktemp -d) XDG_CONFIG_HOME=$(mktemp -d) XDG_DATA_HOME=$(mktemp -d) XDG_CACHE_HOME=$(mktemp -d)
      mkdir -p $out
      ${script}
    '';
in
{
  # The whole test suite except GPU tests, against the source tree.
  pytest =
    runCommand "demod-voice-pytest"
      {
        nativeBuildInputs = [
          devEnv
          demod-voice
        ];
      }
      ''
        export HOME=$(mktemp -d)
        cp -r ${src} source && chmod -R u+w source && cd source
        python -m pytest -q -p no:cacheprovider -m 'not gpu' tests
        touch $out
      '';

  help = check "help" ''
    ${exe} --help > $out/help.txt
    grep -q piper-infer $out/help.txt
  '';

  health = check "health" ''
    ${exe} health --require piper > $out/health.txt
    cat $out/health.txt
  '';

  # Zero noise scales make Piper deterministic: the same bytes on every run.
  piper-synthesis = check "piper-synthesis" ''
    ${exe} piper-infer en_US-joe-medium "Reproducible builds make reproducible voices." \
      --noise-scale 0 --noise-w 0 --output $out/hello.wav
    test "$(head -c 4 $out/hello.wav)" = RIFF
    test "$(stat -c %s $out/hello.wav)" -gt 20000
  '';
}
// lib.optionalAttrs (nixosModule != null) {
  # Boots a VM with the module enabled and talks to the running service.
  nixos-module = testers.runNixOSTest {
    name = "demod-voice-module";
    nodes.machine =
      { ... }:
      {
        imports = [ nixosModule ];
        services.demod-voice = {
          enable = true;
          package = demod-voice;
          port = 5002;
          settings.piper.default_voice = "en_US-joe-medium";
        };
        virtualisation.memorySize = 3072;
      };
    testScript = ''
      machine.wait_for_unit("demod-voice.service")
      machine.wait_for_open_port(5002)
      # The service runs as its own user and owns its data directory.
      machine.succeed("test \"$(stat -c %U /var/lib/demod-voice)\" = demod-voice")
      machine.succeed("systemctl show -p User --value demod-voice.service | grep -qx demod-voice")
      # Something answers HTTP on the configured port.
      machine.succeed("curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:5002/ | grep -Eq '^[1-5][0-9][0-9]$'")
      machine.succeed("${exe} health --require piper")
    '';
  };
}
