"""The NixOS module (services.demod-voice.instances) and the model fetchers, evaluated with the real lib.

The module goes through nixpkgs' own ``lib.evalModules`` (option types, merging,
submodules, assertions) next to typed stand-ins for the few NixOS options it sets
(nixos-options.nix); the generated units are then checked as NixOS would hand them
to systemd. The VM test (legacyPackages.<system>.vmTests.nixos-module) needs KVM and a real nixpkgs.
"""

from __future__ import annotations

import json
import re

import pytest

from tests.packaging.nixeval import HERE, ROOT, needs_inputs, needs_nix, run_eval

EVAL = HERE / "eval.nix"
pytestmark = [needs_nix, needs_inputs]


def evaluate(config: dict, cuda: bool = False) -> dict:
    proc = run_eval(EVAL, "module", {"moduleConfig": json.dumps(config), "cudaPackage": "1" if cuda else ""})
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads(proc.stdout)


def evaluation_error(config: dict, cuda: bool = False) -> str:
    proc = run_eval(EVAL, "module", {"moduleConfig": json.dumps(config), "cudaPackage": "1" if cuda else ""})
    assert proc.returncode != 0, f"evaluation should have failed: {proc.stdout[:500]}"
    return proc.stderr


def service(instances: dict, **extra) -> dict:
    return {"services": {"demod-voice": {"instances": instances, **extra}}}


TWO = service({
    "speech": {"port": 5002, "settings": {"auth": {"required": True}}, "environmentFile": "/run/secrets/speech.env"},
    "assist": {"port": 5003, "wyoming": "tcp://0.0.0.0:10200", "openFirewall": True, "gpu": {"device": 1},
               "models": ["xtts-v2"], "acceptLicenses": ["coqui-public-model-license"],
               "settings": {"piper": {"default_voice": "en_US-joe-medium"}, "server": {"port": 1}}},
})

HARDENING = {
    "DynamicUser": True, "CapabilityBoundingSet": "", "NoNewPrivileges": True, "PrivateTmp": True,
    "PrivateUsers": True, "ProtectClock": True, "ProtectControlGroups": True, "ProtectHome": True,
    "ProtectHostname": True, "ProtectKernelLogs": True, "ProtectKernelModules": True, "ProtectKernelTunables": True,
    "ProtectProc": "invisible", "ProtectSystem": "strict", "RestrictNamespaces": True, "RestrictRealtime": True,
    "RestrictSUIDSGID": True, "LockPersonality": True, "SystemCallArchitectures": "native", "UMask": "0077",
    "DevicePolicy": "closed", "RemoveIPC": True,
}


def test_two_instances_get_their_own_units_ports_and_directories():
    out = evaluate(TWO, cuda=True)
    assert set(out["units"]) == {"demod-voice-speech", "demod-voice-assist"}
    assert out["warnings"] == []
    speech, assist = out["units"]["demod-voice-speech"], out["units"]["demod-voice-assist"]
    for name, unit in (("speech", speech), ("assist", assist)):
        sc = unit["serviceConfig"]
        assert sc["StateDirectory"] == f"demod-voice/{name}" and sc["CacheDirectory"] == f"demod-voice/{name}"
        assert sc["WorkingDirectory"] == f"/var/lib/demod-voice/{name}"
        assert unit["environment"]["XDG_CACHE_HOME"] == f"/var/cache/demod-voice/{name}"
        assert unit["wantedBy"] == ["multi-user.target"]
        config = out["configs"][name]
        assert config["paths"]["data_dir"] == f"/var/lib/demod-voice/{name}"
        assert config["paths"]["cache_dir"] == f"/var/cache/demod-voice/{name}"
    # ExecStart: the package, the instance's generated config, serve, and Wyoming where asked.
    exec_speech = [json.loads(a) for a in speech["serviceConfig"]["ExecStart"].split(" ")]
    assert exec_speech[0].endswith("/bin/demod-voice") and exec_speech[1] == "--config"
    assert exec_speech[2].endswith("-demod-voice-speech.yaml") and exec_speech[3:] == ["serve"]
    exec_assist = [json.loads(a) for a in assist["serviceConfig"]["ExecStart"].split(" ")]
    assert exec_assist[3:] == ["serve", "--wyoming", "tcp://0.0.0.0:10200"]
    # The module's own options win over free-form settings; free-form keys pass through.
    assert out["configs"]["assist"]["server"] == {"host": "127.0.0.1", "port": 5003}
    assert out["configs"]["assist"]["piper"]["default_voice"] == "en_US-joe-medium"
    assert out["configs"]["speech"]["auth"]["required"] is True
    # Typed settings left unset are not written: demod-voice's own defaults apply.
    assert "auth" not in out["configs"]["assist"] and "stt" not in out["configs"]["speech"]
    assert speech["serviceConfig"]["EnvironmentFile"] == ["/run/secrets/speech.env"]
    # Only the instance that asked opens its ports (HTTP and Wyoming).
    assert sorted(out["firewall"]) == [5003, 10200]


def test_units_are_hardened_and_offline():
    out = evaluate(TWO, cuda=True)
    for unit in out["units"].values():
        sc = unit["serviceConfig"]
        for key, value in HARDENING.items():
            assert sc[key] == value, key
        assert sc["RestrictAddressFamilies"] == ["AF_INET", "AF_INET6", "AF_UNIX", "AF_NETLINK"]
        assert sc["SystemCallFilter"] == ["@system-service", "~@privileged"]
        assert sc["MemoryDenyWriteExecute"] is False  # the one documented exception (JIT, CUDA)
        assert unit["environment"]["DEMOD_VOICE_OFFLINE"] == "1" and unit["environment"]["HF_HUB_OFFLINE"] == "1"
    for config in out["configs"].values():
        assert config["models"]["offline"] is True
    # Every exception is commented in the module.
    text = (ROOT / "nix" / "module.nix").read_text()
    assert re.search(r"#[^\n]*\n(\s*#[^\n]*\n)*\s*MemoryDenyWriteExecute = false;", text)
    assert re.search(r"# AF_NETLINK:[^\n]*\n\s*RestrictAddressFamilies", text)
    assert re.search(r"#[^\n]*\n\s*ProcSubset = \"all\";", text)


def test_gpu_rules_by_device_class_and_cuda_sees_that_gpu():
    out = evaluate(TWO, cuda=True)
    speech = out["units"]["demod-voice-speech"]["serviceConfig"]
    assert speech["PrivateDevices"] is True and speech["DeviceAllow"] == []
    assert out["configs"]["speech"]["device"] == "cpu"
    unit = out["units"]["demod-voice-assist"]
    sc = unit["serviceConfig"]
    assert sc["PrivateDevices"] is False
    # By class: a path rule is dropped when its node (nvidia-uvm) does not exist yet at unit start.
    assert sc["DeviceAllow"] == ["char-nvidia-frontend rw", "char-nvidia-ctl rw", "char-nvidia-uvm rw",
                                 "char-nvidia-caps rw"]
    assert set(sc["SupplementaryGroups"]) == {"video", "render"}
    # gpu.device is nvidia-smi's index: CUDA counts in the same (PCI bus) order and sees that one GPU.
    assert unit["environment"]["CUDA_VISIBLE_DEVICES"] == "1"
    assert unit["environment"]["CUDA_DEVICE_ORDER"] == "PCI_BUS_ID"
    assert out["configs"]["assist"]["device"] == "gpu"


def test_models_come_from_the_store_into_a_writable_state_dir():
    out = evaluate(TWO, cuda=True)
    pre = out["units"]["demod-voice-assist"]["serviceConfig"]["ExecStartPre"]
    assert len(pre) == 1
    assert "dest=/var/lib/demod-voice/assist/models/xtts-v2" in pre[0]
    assert re.search(r"src=/nix/store/\w+-demod-voice-model-xtts-v2", pre[0])
    assert out["units"]["demod-voice-speech"]["serviceConfig"]["ExecStartPre"] == []


def test_wyoming_only_instance():
    out = evaluate(service({"ha": {"http": False, "wyoming": "tcp://127.0.0.1:10200", "openFirewall": True}}))
    assert out["units"]["demod-voice-ha"]["serviceConfig"]["ExecStart"].endswith(
        '"serve" "--wyoming" "tcp://127.0.0.1:10200" "--no-http"')
    assert out["firewall"] == [10200]


def test_pinned_voice_from_extra_registry_entries_goes_on_the_voice_path():
    digest = "0" * 64  # an operator's own pin; nothing is fetched during evaluation
    voice = {"kind": "piper", "repo": "example/voices", "revision": "f" * 40, "license": "MIT",
             "files": [{"path": "en_US-test-medium.onnx", "sha256": digest},
                       {"path": "en_US-test-medium.onnx.json", "sha256": digest}]}
    voice["files"] = [{"path": f"en/en_US/test/medium/{f['path']}", "sha256": f["sha256"]} for f in voice["files"]]
    config = service({"speech": {"voices": ["en_US-test-medium"]}}, extraModels={"en_US-test-medium": voice})
    out = evaluate(config)
    voices = out["configs"]["speech"]["paths"]["voices"]
    assert len(voices) == 1 and voices[0].endswith("-demod-voice-model-en_US-test-medium")
    # The voice folder holds NAME.onnx and NAME.onnx.json at its top, where the catalog looks.
    proc = run_eval(EVAL, "voiceLinks", {"moduleConfig": json.dumps(config)})
    assert json.loads(proc.stdout) == {"en_US-test-medium": ["en_US-test-medium.onnx", "en_US-test-medium.onnx.json"]}


def test_old_single_instance_options_still_evaluate_with_a_warning():
    out = evaluate({"services": {"demod-voice": {"enable": True, "port": 8080, "host": "0.0.0.0", "openFirewall": True,
                                                 "gpu": {"enable": True}, "dataDir": "/srv/tts",
                                                 "settings": {"piper": {"default_voice": "en_US-joe-medium"}}}}},
                   cuda=True)
    assert set(out["units"]) == {"demod-voice-default"}
    assert any("deprecated" in w and "instances.default" in w for w in out["warnings"])
    assert any("dataDir is ignored" in w for w in out["warnings"])
    assert out["configs"]["default"]["server"] == {"host": "0.0.0.0", "port": 8080}
    assert out["firewall"] == [8080]
    assert "char-nvidia-frontend rw" in out["units"]["demod-voice-default"]["serviceConfig"]["DeviceAllow"]
    assert out["units"]["demod-voice-default"]["environment"]["CUDA_VISIBLE_DEVICES"] == "0"


def test_nothing_enabled_adds_no_unit():
    out = evaluate({})
    assert out["units"] == {} and out["firewall"] == [] and out["warnings"] == []


# --- evaluation errors with clear messages ---------------------------------------------------

@pytest.mark.parametrize("port", [0, 70000])
def test_bad_port_is_an_evaluation_error(port):
    err = evaluation_error(service({"speech": {"port": port}}))
    assert "services.demod-voice.instances.speech.port" in err
    assert "between 1 and 65535" in err


def test_typed_setting_with_a_wrong_type_is_an_evaluation_error():
    err = evaluation_error(service({"speech": {"settings": {"auth": {"required": "yes"}}}}))
    assert "services.demod-voice.instances.speech.settings.auth.required" in err


def test_bad_wyoming_address_is_an_evaluation_error():
    err = evaluation_error(service({"ha": {"wyoming": "10200"}}))
    assert "services.demod-voice.instances.ha.wyoming" in err


def test_unknown_voice_is_an_evaluation_error():
    err = evaluation_error(service({"speech": {"voices": ["en_US-nobody-medium"]}}))
    assert "Failed assertions" in err
    assert "instances.speech.voices: unknown voice 'en_US-nobody-medium'" in err


def test_unknown_model_is_an_evaluation_error():
    err = evaluation_error(service({"speech": {"models": ["xtts-v3"]}}))
    assert "unknown model 'xtts-v3'" in err and "xtts-v2" in err


def test_gated_model_needs_its_licence_accepted():
    err = evaluation_error(service({"speech": {"models": ["xtts-v2"]}}))
    assert "xtts-v2 is licensed under the Coqui Public Model License" in err
    assert 'acceptLicenses = [ "coqui-public-model-license" ]' in err
    # An ungated model needs nothing.
    assert evaluate(service({"speech": {"models": ["rvc-aux"]}}))["units"]


def test_model_without_pinned_digests_cannot_be_put_in_the_store():
    from demod_voice import models

    unpinned = [n for n, e in models.BUILTIN.items() if any(f.sha256 is None for f in e.files)]
    if not unpinned:
        pytest.skip("every registry entry is fully pinned")
    err = evaluation_error(service({"speech": {"models": [unpinned[0]]}}))
    assert f"{unpinned[0]} cannot be pinned in the Nix store" in err


def test_two_instances_on_one_port_is_an_evaluation_error():
    err = evaluation_error(service({"a": {"port": 5002}, "b": {"port": 5002}}))
    assert "two instances use the same port" in err


# --- the registry manifest is what the fetchers use ------------------------------------------

def test_fetchers_use_exactly_the_registrys_manifest():
    from huggingface_hub import hf_hub_url

    from demod_voice import models

    proc = run_eval(EVAL, "fetchers")
    assert proc.returncode == 0, proc.stderr[-3000:]
    fetchers = json.loads(proc.stdout)
    assert set(fetchers) == set(models.BUILTIN)
    for name, entry in models.BUILTIN.items():
        unpinned = [f.path for f in entry.files if f.sha256 is None]
        if unpinned:
            # No digest, no fixed-output derivation: fetching it is a clear evaluation error.
            assert fetchers[name] == {"unpinned": unpinned}
            proc = run_eval(EVAL, "fetchOne", {"model": name})
            assert proc.returncode != 0 and f"model '{name}' file '{unpinned[0]}' has no pinned sha256" in proc.stderr
            continue
        files = fetchers[name]["files"]
        assert [f["name"] for f in files] == [f.path for f in entry.files]
        for fetched, spec in zip(files, entry.files, strict=True):
            # The same file `models pull` downloads (huggingface_hub builds that URL) and the same digest.
            assert fetched["url"] == hf_hub_url(entry.repo, spec.path, revision=entry.revision,
                                                endpoint=models.DEFAULT_HUB)
            assert fetched["url"] == models.file_url(entry, spec.path)
            assert fetched["hash"] == spec.sha256
    # One source: the flake exports the manifest Python reads, unchanged.
    proc = run_eval(EVAL, "manifest")
    assert json.loads(proc.stdout) == models.load_manifest()
    assert models.MANIFEST_FILE == ROOT / "demod_voice" / "models_manifest.json"


def test_no_model_pin_is_typed_into_nix():
    from demod_voice import models

    digests = {f.sha256 for e in models.BUILTIN.values() for f in e.files if f.sha256}
    revisions = {e.revision for e in models.BUILTIN.values()}
    text = "\n".join(p.read_text() for p in [ROOT / "flake.nix", *(ROOT / "nix").glob("*.nix")])
    for pin in digests | revisions:
        assert pin not in text


def test_vm_test_runs_two_instances_over_http_and_wyoming():
    proc = run_eval(EVAL, "vmTest")
    assert proc.returncode == 0, proc.stderr[-3000:]
    vm = json.loads(proc.stdout)
    units = vm["module"]["units"]
    assert set(units) == {"demod-voice-speech", "demod-voice-assist"}
    assert units["demod-voice-assist"]["serviceConfig"]["ExecStart"].endswith('"serve" "--wyoming" "tcp://127.0.0.1:10200"')
    assert vm["module"]["configs"]["speech"]["auth"]["required"] is True
    assert units["demod-voice-speech"]["serviceConfig"]["EnvironmentFile"]
    script = vm["testScript"]
    for unit in units:
        assert f'wait_for_unit("{unit}.service")' in script
    assert "/v1/audio/speech" in script and 'code == "401"' in script and "Bearer" in script
    assert "wait_for_open_port(10200)" in script and "wyoming-synth.py" in script


def test_exec_start_keeps_percent_and_dollar_literal():
    """systemd expands %specifiers and $VARS in ExecStart; each argument is escaped for systemd."""
    out = evaluate(service({"a": {"port": 5010, "extraArgs": ["--log-format=%h $HOME \"x\""]}}))
    exec_start = out["units"]["demod-voice-a"]["serviceConfig"]["ExecStart"]
    assert exec_start.endswith(r'"serve" "--log-format=%%h $$HOME \"x\""'), exec_start


def test_gpu_device_needs_a_cuda_package():
    err = evaluation_error(service({"g": {"port": 5011, "gpu": {"device": 0}}}))
    assert "instances.g.gpu.device is set, but its package" in err and "CPU build" in err
    assert evaluate(service({"g": {"port": 5011, "gpu": {"device": 0}}}), cuda=True)["units"]


def test_unix_wyoming_socket_lives_in_the_runtime_directory():
    out = evaluate(service({"ha": {"http": False, "wyoming": "unix:///run/demod-voice/ha/wyoming.sock"}}))
    sc = out["units"]["demod-voice-ha"]["serviceConfig"]
    # No Home Assistant on this machine and no socketGroup: only the instance's own user connects.
    assert sc["RuntimeDirectory"] == "demod-voice/ha" and sc["RuntimeDirectoryMode"] == "0755"
    assert not any("chgrp" in pre for pre in sc.get("ExecStartPre", []))
    assert sc["ExecStart"].endswith('"--wyoming" "unix:///run/demod-voice/ha/wyoming.sock" "--no-http"')
    err = evaluation_error(service({"ha": {"http": False, "wyoming": "unix:///var/run/ha.sock"}}))
    assert "a unix socket must be in /run/demod-voice/ha/" in err


@pytest.mark.parametrize("how", ["home-assistant", "explicit"])
def test_unix_socket_group_lets_home_assistant_connect(how):
    """The socket's folder gets the group (setgid 2750); the app creates the socket 0660 despite UMask 077."""
    instance = {"http": False, "wyoming": "unix:///run/demod-voice/ha/wyoming.sock"}
    if how == "explicit":
        config = service({"ha": {**instance, "socketGroup": "voice"}})
        group = "voice"
    else:
        config = {**service({"ha": instance}), "services": {**service({"ha": instance})["services"],
                                                          "home-assistant": {"enable": True}}}
        group = "hass"
    sc = evaluate(config)["units"]["demod-voice-ha"]["serviceConfig"]
    assert sc["UMask"] == "0077" and sc["RuntimeDirectoryMode"] == "2750"
    pre = sc["ExecStartPre"]
    assert re.fullmatch(rf"\+/nix/store/\S+/bin/chgrp {group} /run/demod-voice/ha", pre[0]), pre
    assert re.fullmatch(r"\+/nix/store/\S+/bin/chmod 2750 /run/demod-voice/ha", pre[1]), pre
    # The app's default socket mode is what the group needs (tests/wyoming/test_unix_socket.py creates it so).
    from demod_voice.config import SCHEMA

    assert SCHEMA["wyoming"]["socket_mode"].default == "0660"
