# A layered OCI image of demod-voice. streamLayeredImage builds a script that writes the image
# to stdout, so no gzipped tarball sits in the store: `$(nix build --print-out-paths .#dockerImage) | podman load`.
#
# Entrypoint `demod-voice`; CA certificates and ffmpeg inside; a writable /tmp;
# runs as an unprivileged user; and the environment the NVIDIA container toolkit
# needs to hand the GPU to torch and onnxruntime (`docker run --gpus all`).
{
  lib,
  dockerTools,
  cacert,
  ffmpeg-headless,
  demod-voice,
  name ? "demod-voice",
  tag ? demod-voice.version + (if demod-voice.cudaSupport or false then "-cuda" else "-cpu"),
}:

let
  uid = "10001";
  home = "/var/lib/demod-voice";
in
dockerTools.streamLayeredImage {
  inherit name tag;

  contents = [
    demod-voice
    cacert
    ffmpeg-headless
    dockerTools.binSh # lets HEALTHCHECKs and `docker exec sh` work
    dockerTools.usrBinEnv
  ];

  # Runs in the image root before packing: a world-writable sticky /tmp, the
  # service user's home, and the path nixpkgs' CUDA libraries search for the
  # driver (/run/opengl-driver/lib) pointed at where the toolkit mounts it.
  extraCommands = ''
    mkdir -p tmp var/tmp etc .${home}/data .${home}/cache run/opengl-driver usr/lib64
    chmod 1777 tmp var/tmp
    ln -s /usr/lib64 run/opengl-driver/lib
    echo 'root:x:0:0:root:/root:/bin/sh' > etc/passwd
    echo 'demod-voice:x:${uid}:${uid}:demod-voice:${home}:/bin/sh' >> etc/passwd
    echo 'root:x:0:' > etc/group
    echo 'demod-voice:x:${uid}:' >> etc/group
  '';
  fakeRootCommands = ''
    chown -R ${uid}:${uid} .${home}
  '';
  enableFakechroot = false;

  config = {
    Entrypoint = [ (lib.getExe demod-voice) ];
    Cmd = [ "--help" ];
    User = "${uid}:${uid}";
    WorkingDir = home;
    Volumes = {
      ${home} = { };
    };
    ExposedPorts = {
      "5002/tcp" = { };
    };
    Env = [
      "PATH=/bin:/usr/bin:${lib.makeBinPath [ demod-voice ffmpeg-headless ]}"
      "HOME=${home}"
      "XDG_DATA_HOME=${home}/data"
      "XDG_CACHE_HOME=${home}/cache"
      "TMPDIR=/tmp"
      "DEMOD_VOICE_SERVER__HOST=0.0.0.0"
      # CA certificates for HTTPS (model downloads) from the image, not the host.
      "SSL_CERT_FILE=${cacert}/etc/ssl/certs/ca-bundle.crt"
      "REQUESTS_CA_BUNDLE=${cacert}/etc/ssl/certs/ca-bundle.crt"
      # What the NVIDIA container toolkit reads to mount the driver and devices.
      "NVIDIA_VISIBLE_DEVICES=all"
      "NVIDIA_DRIVER_CAPABILITIES=compute,utility"
      # Where the toolkit places libcuda.so & co. in a non-FHS image.
      "LD_LIBRARY_PATH=/usr/lib64:/usr/lib/x86_64-linux-gnu:/usr/lib/aarch64-linux-gnu:/run/opengl-driver/lib"
    ];
    Healthcheck = {
      Test = [
        "CMD"
        (lib.getExe demod-voice)
        "health"
        "--require"
        "piper"
      ];
      Interval = 30000000000; # nanoseconds: 30 s
      Timeout = 10000000000;
      Retries = 3;
    };
    Labels = {
      "org.opencontainers.image.title" = "demod-voice";
      "org.opencontainers.image.description" = demod-voice.meta.description;
      "org.opencontainers.image.licenses" = "MIT";
      "org.opencontainers.image.version" = demod-voice.version;
    };
  };
}
