# Models and voices as fixed-output derivations, from the model registry's own
# data (demod_voice/models_manifest.json, which `demod-voice models pull` reads):
# the same hub URL at the same pinned revision, checked against the same sha256.
# Nothing here repeats a pin.
#
#   (pkgs.callPackage ./models.nix { }).fetch "xtts-v2"
#     -> a folder with config.json, model.pth, ... as `models pull` lays it out.
{
  lib,
  fetchurl,
  linkFarm,
  # Extra registry entries (same fields as the manifest's `models`), e.g. an
  # operator's own pinned Piper voices.
  extraModels ? { },
}:

let
  manifest = lib.importJSON ../demod_voice/models_manifest.json;
  models = manifest.models // extraModels;

  # demod_voice.models.file_url: <hub>/<repo>/resolve/<revision>/<path>
  fileUrl = entry: path: "${manifest.hub}/${entry.repo}/resolve/${entry.revision}/${path}";

  fetchFile =
    name: entry: file:
    if file.sha256 or null == null then
      throw "demod-voice: model '${name}' file '${file.path}' has no pinned sha256 in the registry, so it cannot be a fixed-output derivation; pin it (docs/models.md) or place the model by hand"
    else
      fetchurl {
        name = "${name}-${lib.replaceStrings [ "/" ] [ "-" ] file.path}";
        url = fileUrl entry file.path;
        sha256 = file.sha256;
      };

  # A model folder as `models pull` lays it out (paths as in the repository);
  # `flat = true` puts every file at the top (Piper voices: NAME.onnx + NAME.onnx.json).
  fetchWith =
    { flat }:
    name:
    let
      entry =
        models.${name}
          or (throw "demod-voice: unknown model '${name}'; the registry knows: ${lib.concatStringsSep ", " (lib.attrNames models)}");
    in
    (linkFarm "demod-voice-model-${name}" (
      map (file: {
        name = if flat then baseNameOf file.path else file.path;
        path = fetchFile name entry file;
      }) entry.files
    )).overrideAttrs
      (old: {
        passthru = (old.passthru or { }) // {
          inherit name entry;
          urls = map (file: fileUrl entry file.path) entry.files;
        };
      });
  fetch = fetchWith { flat = false; };
  fetchVoice = fetchWith { flat = true; };
in
{
  inherit manifest models fileUrl fetch fetchVoice;
  # Names by kind, for option checks: piper voices vs. everything else.
  voiceNames = lib.attrNames (lib.filterAttrs (_: e: e.kind == "piper") models);
  modelNames = lib.attrNames (lib.filterAttrs (_: e: e.kind != "piper") models);
}
