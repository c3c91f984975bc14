# The interpreter as pyproject.nix and uv2nix read it: version, platform,
# implementation, site-packages path.
{
  lib,
  stdenv,
  version,
}:
let
  pythonVersion = lib.versions.majorMinor version;
in
stdenv.mkDerivation (finalAttrs: {
  pname = "python3";
  inherit version;
  passthru = {
    inherit pythonVersion stdenv;
    sourceVersion = {
      major = lib.versions.major version;
      minor = lib.versions.minor version;
      patch = lib.versions.patch version;
    };
    implementation = "cpython";
    sitePackages = "lib/python${pythonVersion}/site-packages";
    libPrefix = "python${pythonVersion}";
    executable = "python${pythonVersion}";
    interpreter = "${finalAttrs.outPath}/bin/python${pythonVersion}";
    isPy3 = true;
    pythonOnBuildForHost = finalAttrs;
  };
})
