# autoPatchelfHook with nixpkgs' semantics: after fixup, every DT_NEEDED of every ELF file in
# the outputs must resolve against the outputs themselves, the inputs' lib/ folders, the paths
# given to addAutoPatchelfSearchPath (searched recursively) and runtimeDependencies, or be named
# in autoPatchelfIgnoreMissingDeps; otherwise the build fails naming the file and the library.
declare -a autoPatchelfLibs=()
declare -a extraAutoPatchelfLibs=()

gatherLibraries() {
    if [ -d "$1/lib" ]; then autoPatchelfLibs+=("$1/lib"); fi
}
addEnvHooks "${targetOffset-0}" gatherLibraries

addAutoPatchelfSearchPath() {
    local path
    for path in "$@"; do
        if [ "$path" != --no-recurse ]; then extraAutoPatchelfLibs+=("$path"); fi
    done
}

autoPatchelf() {
    [ "${1-}" != -- ] || shift
    local -a ignore=()
    local name
    for name in ${autoPatchelfIgnoreMissingDeps-}; do ignore+=(--ignore-missing "$name"); done
    local -a runtime=()
    for name in ${runtimeDependencies-}; do runtime+=(--runtime-dependency "$name"); done
    @python@ @script@ --paths "$@" --libs ${autoPatchelfLibs[@]+"${autoPatchelfLibs[@]}"} \
        --extra-libs ${extraAutoPatchelfLibs[@]+"${extraAutoPatchelfLibs[@]}"} \
        ${ignore[@]+"${ignore[@]}"} ${runtime[@]+"${runtime[@]}"}
}

autoPatchelfPostFixup() {
    if [ -z "${dontAutoPatchelf-}" ]; then
        local -a dirs=()
        local o
        for o in $outputs; do dirs+=("${!o}"); done
        autoPatchelf -- "${dirs[@]}"
    fi
}
postFixupHooks+=(autoPatchelfPostFixup)
