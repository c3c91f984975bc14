# The flake's inputs as `make nix-inputs` (nix/ci/inputs.py) left them in the inputs directory:
# $DEMOD_NIX_INPUTS, else ${XDG_CACHE_HOME:-~/.cache}/demod-voice/nix-inputs. A folder is used only
# when the directory's manifest records flake.lock's revision and narHash for it.
{
  inputsDir ? "",
}:
let
  getEnv = builtins.getEnv;
  cache = if getEnv "XDG_CACHE_HOME" != "" then getEnv "XDG_CACHE_HOME" else getEnv "HOME" + "/.cache";
  dir =
    if inputsDir != "" then
      inputsDir
    else if getEnv "DEMOD_NIX_INPUTS" != "" then
      getEnv "DEMOD_NIX_INPUTS"
    else
      cache + "/demod-voice/nix-inputs";
  manifestFile = dir + "/inputs.json";
  manifest =
    if builtins.pathExists manifestFile then
      builtins.fromJSON (builtins.readFile manifestFile)
    else
      throw "no Nix inputs in ${dir}: run `make nix-inputs`";
  locked = (builtins.fromJSON (builtins.readFile ../../flake.lock)).nodes;
  nixpkgsLib = builtins.fromJSON (builtins.readFile ./nixpkgs-lib.json);
  want = {
    nixpkgs = nixpkgsLib;
    pyproject-nix = locked.pyproject-nix.locked;
    uv2nix = locked.uv2nix.locked;
    pyproject-build-systems = locked.pyproject-build-systems.locked;
  };
  folder =
    name:
    let
      have = manifest.${name} or { };
    in
    if (have.rev or "") == want.${name}.rev && (have.narHash or "") == want.${name}.narHash then
      /. + "${dir}/${have.folder}"
    else
      throw "${dir}: ${name} is not at flake.lock's ${want.${name}.rev}: run `make nix-inputs`";
in
{
  inherit dir;
  nixpkgsLib = folder "nixpkgs";
  pyproject-nix = folder "pyproject-nix";
  uv2nix = folder "uv2nix";
  build-system-pkgs = folder "pyproject-build-systems";
}
