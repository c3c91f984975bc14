# demod-voice's passthru.tests: the CLI's --help and health and a deterministic Piper synthesis
# (the flake's `checks`), the whole test suite (legacyPackages.<system>.testSuite.pytest: it is
# `make test` again, and a few tests need the network the sandbox has not), and (when a module is
# given) a NixOS VM test of services.demod-voice (legacyPackages.<system>.vmTests: needs KVM).
{
  lib,
  runCommand,
  testers,
  ffmpeg-headless,
  clang,
  writeText,
  demod-voice,
  devEnv, # the locked environment with the dev extra (./python-env.nix)
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
  # The test suite without slow and GPU tests, against the source tree.
  pytest =
    runCommand "demod-voice-pytest"
      {
        nativeBuildInputs = [
          devEnv
          demod-voice
          ffmpeg-headless
          clang
        ];
      }
      ''
        export HOME=$(mktemp -d)
        mkdir -p $out
        cp -r ${src} source && chmod -R u+w source && cd source
        python -m pytest -q -p no:cacheprovider -m 'not slow and not gpu' tests 2>&1 | tee $out/pytest.log
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
  # Boots a VM with two instances and talks to both. Needs KVM (nixosTest runs
  # QEMU): it runs wherever `nix flake check` has /dev/kvm, not on CI machines without it.
  nixos-module =
    let
      # Test-only secret; a real system keeps it out of the store (docs/nix.md).
      envFile = writeText "demod-voice-test.env" "DEMOD_VOICE_API_KEYS=tester:test-key-123\n";
      speak = writeText "speak.json" (
        builtins.toJSON {
          model = "tts-1";
          input = "Hello from NixOS.";
          voice = "alloy";
          response_format = "wav";
        }
      );
      # Wyoming client: describe, then synthesize, and check audio came back.
      wyomingClient = writeText "wyoming-synth.py" ''
        import asyncio, sys
        from wyoming.client import AsyncTcpClient
        from wyoming.audio import AudioChunk, AudioStop
        from wyoming.tts import Synthesize

        async def main():
            async with AsyncTcpClient("127.0.0.1", 10200) as client:
                await client.write_event(Synthesize(text="Hello over Wyoming.").event())
                size = 0
                while True:
                    event = await client.read_event()
                    if event is None:
                        sys.exit("connection closed before audio-stop")
                    if AudioChunk.is_type(event.type):
                        size += len(AudioChunk.from_event(event).audio)
                    if AudioStop.is_type(event.type):
                        break
                assert size > 10000, size
                print("wyoming audio bytes", size)

        asyncio.run(main())
      '';
    in
    testers.runNixOSTest {
      name = "demod-voice-module";
      nodes.machine =
        { ... }:
        {
          imports = [ nixosModule ];
          services.demod-voice.package = demod-voice;
          services.demod-voice.instances = {
            # Piper over HTTP, API keys required.
            speech = {
              port = 5002;
              settings.auth.required = true;
              environmentFile = "${envFile}";
            };
            # Home Assistant: Wyoming plus HTTP, no keys.
            assist = {
              port = 5003;
              wyoming = "tcp://127.0.0.1:10200";
            };
          };
          virtualisation.memorySize = 4096;
        };
      testScript = ''
        machine.wait_for_unit("demod-voice-speech.service")
        machine.wait_for_unit("demod-voice-assist.service")
        machine.wait_for_open_port(5002)
        machine.wait_for_open_port(5003)
        machine.wait_for_open_port(10200)

        # Each instance runs as its own dynamic user with its own state directory.
        user_a = machine.succeed("systemctl show -p User --value demod-voice-speech.service").strip()
        user_b = machine.succeed("systemctl show -p User --value demod-voice-assist.service").strip()
        assert user_a != user_b, (user_a, user_b)
        machine.succeed("test -d /var/lib/demod-voice/speech && test -d /var/lib/demod-voice/assist")

        # HTTP synthesis with a key works; without one it is refused.
        machine.succeed(
            "curl -sf -H 'Authorization: Bearer test-key-123' -H 'Content-Type: application/json' "
            "--data @${speak} http://127.0.0.1:5002/v1/audio/speech -o /tmp/speech.wav"
        )
        machine.succeed("test \"$(head -c 4 /tmp/speech.wav)\" = RIFF")
        code = machine.succeed(
            "curl -s -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' "
            "--data @${speak} http://127.0.0.1:5002/v1/audio/speech"
        ).strip()
        assert code == "401", code

        # The second instance: HTTP without keys, and Wyoming.
        machine.succeed(
            "curl -sf -H 'Content-Type: application/json' --data @${speak} "
            "http://127.0.0.1:5003/v1/audio/speech -o /tmp/assist.wav"
        )
        machine.succeed("${devEnv}/bin/python ${wyomingClient}")

        # Offline: the units carry the switch.
        machine.succeed("systemctl show -p Environment demod-voice-speech.service | grep -q DEMOD_VOICE_OFFLINE=1")
      '';
    };
}
