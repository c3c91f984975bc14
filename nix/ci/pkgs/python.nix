# `python3`: the CI interpreter (the one .venv runs), linked into a store folder. Its prefix is
# DEMOD_NIX_PYTHON_PREFIX (sys.base_prefix); its version is read from the headers there, so
# pyproject.nix and uv2nix select wheels for exactly the interpreter `make test` uses.
{
  lib,
  stdenv,
  pythonVersion ? null, # evaluation only
}:
let
  prefix = builtins.getEnv "DEMOD_NIX_PYTHON_PREFIX";
  includes = builtins.attrNames (builtins.readDir (prefix + "/include"));
  header = builtins.head (builtins.filter (lib.hasPrefix "python3") includes);
  fromHeaders = builtins.head (
    builtins.match ''.*#define PY_VERSION[[:space:]]+"([0-9.]+)".*'' (
      builtins.readFile "${prefix}/include/${header}/patchlevel.h"
    )
  );
  version =
    if pythonVersion != null then
      pythonVersion
    else if prefix == "" then
      throw "nix/ci/pkgs: set DEMOD_NIX_PYTHON_PREFIX to the CI interpreter's sys.base_prefix"
    else
      fromHeaders;
  majorMinor = lib.versions.majorMinor version;
in
stdenv.mkDerivation (finalAttrs: {
  pname = "python3";
  inherit version prefix;
  dontUnpack = true;
  dontFixup = true;
  installPhase = ''
    [ -x "$prefix/bin/python${majorMinor}" ] || { echo "error: no $prefix/bin/python${majorMinor}" >&2; exit 1; }
    mkdir -p $out/bin $out/lib
    ln -s "$prefix/bin/python${majorMinor}" $out/bin/python${majorMinor}
    ln -s python${majorMinor} $out/bin/python3
    ln -s python${majorMinor} $out/bin/python
    ln -s "$prefix/lib/python${majorMinor}" $out/lib/python${majorMinor}
    for f in "$prefix"/lib/libpython3*.so*; do ln -s "$f" $out/lib/; done
    if [ -d "$prefix/include" ]; then ln -s "$prefix/include" $out/include; fi
  '';
  passthru = {
    pythonVersion = majorMinor;
    inherit stdenv;
    sourceVersion = {
      major = lib.versions.major version;
      minor = lib.versions.minor version;
      patch = lib.versions.patch version;
    };
    implementation = "cpython";
    sitePackages = "lib/python${majorMinor}/site-packages";
    libPrefix = "python${majorMinor}";
    executable = "python${majorMinor}";
    interpreter = "${finalAttrs.outPath}/bin/python${majorMinor}";
    isPy3 = true;
    isPy311 = majorMinor == "3.11";
    pythonOnBuildForHost = finalAttrs;
  };
  meta.mainProgram = "python3";
})
