# autoAddDriverRunpath: the NVIDIA driver's library folder (NixOS: /run/opengl-driver/lib) joins
# the run path of every dynamically linked ELF file, after autoPatchelf (libcuda.so.1 is the driver's).
autoAddDriverRunpath() {
    local o f
    for o in $outputs; do
        while IFS= read -r -d '' f; do
            if isELF "$f" && patchelf --print-needed "$f" >/dev/null 2>&1; then
                chmod u+w "$f"
                patchelf --add-rpath /run/opengl-driver/lib "$f"
            fi
        done < <(find "${!o}" -type f \( -name '*.so' -o -name '*.so.*' \) -print0)
    done
}
postFixupHooks+=(autoAddDriverRunpath)
