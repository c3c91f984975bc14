# The checkout as a flake sees it: its files copied to the store, without what a flake's git source never
# holds (.venv, caches, build output). Importing the working directory itself made every evaluation that
# turns `./.` into a string (uv2nix's workspace root) copy .venv too: 8.6 GB into the store per CI run.
checkout:
builtins.path {
  path = checkout;
  name = "source";
  filter =
    path: type:
    !(builtins.elem (baseNameOf path) [
      ".git"
      ".venv"
      ".uv"
      ".nix-results"
      ".pytest_cache"
      ".ruff_cache"
      ".schemathesis"
      "__pycache__"
      "build"
      "dist"
      "out"
      "demod_voice.egg-info"
    ]);
}
