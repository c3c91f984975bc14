# The builder of nix/ci/pkgs' stdenv.mkDerivation: nixpkgs' generic builder in miniature.
# Inputs' setup hooks are sourced, env hooks run per input, and the standard phases run with
# their pre/post hooks, so pyproject.nix's hooks (configure, build, install, make-venv) and our
# autoPatchelf/makeWrapper hooks work as they do in nixpkgs. Tools come from this machine
# (bash, coreutils, gcc, patchelf, unzip): the builds are real, the toolchain is the host's.
set -e
set -o pipefail
shopt -s nullglob

export PATH="/usr/local/bin:/usr/bin:/bin"
export HOME=/homeless-shelter
: "${outputs:=out}"
: "${NIX_BUILD_CORES:=1}"
export NIX_BUILD_CORES

# passAsFile: the attribute arrives as a file; read it back into its variable.
for _n in ${passAsFile-}; do
    _p="${_n}Path"
    declare "$_n=$(cat "${!_p}")"
done

_eval() {
    if declare -F "$1" >/dev/null; then
        "$@"
    else
        eval "$1"
    fi
}

# runHook preBuild: the variable or function of that name, then every entry of preBuildHooks.
runHook() {
    local name="$1"
    shift
    if [ -n "${!name-}" ]; then
        eval "${!name}"
    elif declare -F "$name" >/dev/null && [[ "$name" != *Phase ]]; then
        "$name" "$@"
    fi
    local arr="${name}Hooks[@]"
    local hook
    for hook in ${!arr+"${!arr}"}; do
        _eval "$hook" "$@"
    done
    return 0
}

addToSearchPath() {
    local var="$1" dir="$2"
    if [ -d "$dir" ]; then
        export "$var=${!var:+${!var}:}$dir"
    fi
}

declare -a envHooks=()
addEnvHooks() {
    shift
    envHooks+=("$@")
}

stripHash() {
    local base
    base="$(basename "$1")"
    if [[ "$base" =~ ^[a-z0-9]{32}- ]]; then
        echo "${base:33}"
    else
        echo "$base"
    fi
}

substitute() {
    local input="$1" output="$2"
    shift 2
    local content
    content="$(cat "$input"; printf x)"
    content="${content%x}"
    while [ $# -gt 0 ]; do
        case "$1" in
            --replace | --replace-fail | --replace-warn | --replace-quiet)
                if [ "$1" = --replace-fail ] && [[ "$content" != *"$2"* ]]; then
                    echo "substitute: '$2' not found in $input" >&2
                    return 1
                fi
                content="${content//"$2"/"$3"}"
                shift 3
                ;;
            --subst-var)
                content="${content//@$2@/${!2}}"
                shift 2
                ;;
            --subst-var-by)
                content="${content//@$2@/$3}"
                shift 3
                ;;
            *)
                echo "substitute: unknown argument $1" >&2
                return 1
                ;;
        esac
    done
    printf '%s' "$content" >"$output.tmp"
    if [ -e "$output" ] && [ "$input" = "$output" ]; then chmod --reference="$input" "$output.tmp"; fi
    mv "$output.tmp" "$output"
}

substituteInPlace() {
    local file="$1"
    shift
    substitute "$file" "$file" "$@"
}

isELF() {
    [ "$(head -c 4 "$1" 2>/dev/null | od -An -c | tr -d ' ')" = '177ELF' ]
}

patchShebangs() {
    : # the host's interpreters are where the shebangs say
}

getAllOutputNames() {
    echo "$outputs"
}

# --- inputs: propagated closure, PATH, setup hooks, env hooks ---------------------------------
declare -a _deps=()
declare -A _seen=()
_findInputs() {
    local p="$1"
    [ -n "$p" ] || return 0
    [ -z "${_seen[$p]-}" ] || return 0
    _seen[$p]=1
    _deps+=("$p")
    local f q
    for f in "$p/nix-support/propagated-build-inputs" "$p/nix-support/propagated-native-build-inputs"; do
        if [ -f "$f" ]; then
            for q in $(cat "$f"); do _findInputs "$q"; done
        fi
    done
}
for _p in ${nativeBuildInputs-} ${buildInputs-} ${propagatedNativeBuildInputs-} ${propagatedBuildInputs-}; do
    _findInputs "$_p"
done
for _p in "${_deps[@]}"; do
    if [ -d "$_p/bin" ]; then PATH="$_p/bin:$PATH"; fi
    if [ -f "$_p/nix-support/setup-hook" ]; then
        # shellcheck disable=SC1091
        source "$_p/nix-support/setup-hook"
    elif [ -f "$_p" ] && [[ "$_p" == *-hook ]]; then
        source "$_p"
    fi
done
for _p in "${_deps[@]}"; do
    for _h in ${envHooks[@]+"${envHooks[@]}"}; do
        _eval "$_h" "$_p"
    done
done
export PATH

# --- phases -----------------------------------------------------------------------------------
unpackPhase() {
    runHook preUnpack
    local before after
    before="$(ls -A)"
    if [ -d "$src" ]; then
        cp -r --no-preserve=mode "$src" "$(stripHash "$src")"
    else
        case "$src" in
            *.zip | *.whl) unzip -q "$src" ;;
            *) tar xf "$src" ;;
        esac
    fi
    after="$(comm -13 <(echo "$before" | sort) <(ls -A | sort))"
    if [ -z "${sourceRoot-}" ]; then
        if [ "$(echo "$after" | wc -l)" = 1 ] && [ -d "$after" ]; then
            sourceRoot="$after"
        else
            sourceRoot=.
        fi
    fi
    chmod -R u+w -- "$sourceRoot"
    runHook postUnpack
}

patchPhase() {
    runHook prePatch
    local p
    for p in ${patches-}; do patch -p1 <"$p"; done
    runHook postPatch
}

configurePhase() {
    runHook preConfigure
    runHook postConfigure
}

buildPhase() {
    runHook preBuild
    if [ -f Makefile ] || [ -f makefile ]; then make -j"$NIX_BUILD_CORES" ${makeFlags-} ${buildFlags-}; fi
    runHook postBuild
}

checkPhase() {
    runHook preCheck
    runHook postCheck
}

installPhase() {
    runHook preInstall
    if [ -f Makefile ] || [ -f makefile ]; then make install PREFIX="$out" ${installFlags-}; fi
    runHook postInstall
}

fixupPhase() {
    runHook preFixup
    local o
    for o in $outputs; do
        if [ -e "${!o}" ]; then
            prefix="${!o}" runHook fixupOutput
        fi
    done
    if [ -n "${propagatedBuildInputs-}" ]; then
        mkdir -p "$out/nix-support"
        echo "$propagatedBuildInputs" >>"$out/nix-support/propagated-build-inputs"
    fi
    if [ -n "${propagatedNativeBuildInputs-}" ]; then
        mkdir -p "$out/nix-support"
        echo "$propagatedNativeBuildInputs" >>"$out/nix-support/propagated-native-build-inputs"
    fi
    if [ -n "${setupHook-}" ]; then
        mkdir -p "$out/nix-support"
        cp "$setupHook" "$out/nix-support/setup-hook"
    fi
    runHook postFixup
}

installCheckPhase() {
    runHook preInstallCheck
    runHook postInstallCheck
}

distPhase() {
    runHook preDist
    runHook postDist
}

genericBuild() {
    if [ -n "${buildCommand-}" ]; then
        eval "$buildCommand"
        return
    fi
    local phases="${prePhases-} unpackPhase patchPhase ${preConfigurePhases-} configurePhase ${preBuildPhases-} buildPhase checkPhase ${preInstallPhases-} installPhase ${preFixupPhases-} fixupPhase installCheckPhase ${preDistPhases-} distPhase ${postPhases-}"
    local curPhase skip
    for curPhase in $phases; do
        skip=
        case "$curPhase" in
            unpackPhase) [ -z "${dontUnpack-}" ] || skip=1 ;;
            patchPhase) [ -z "${dontPatch-}" ] || skip=1 ;;
            configurePhase) [ -z "${dontConfigure-}" ] || skip=1 ;;
            buildPhase) [ -z "${dontBuild-}" ] || skip=1 ;;
            checkPhase) [ -n "${doCheck-}" ] || skip=1 ;;
            installPhase) [ -z "${dontInstall-}" ] || skip=1 ;;
            fixupPhase) [ -z "${dontFixup-}" ] || skip=1 ;;
            installCheckPhase) [ -n "${doInstallCheck-}" ] || skip=1 ;;
            distPhase) [ -n "${doDist-}" ] || skip=1 ;;
        esac
        [ -z "$skip" ] || continue
        echo "@ $curPhase"
        if [ -n "${!curPhase-}" ]; then
            eval "${!curPhase}"
        else
            "$curPhase"
        fi
        if [ "$curPhase" = unpackPhase ]; then cd "${sourceRoot:-.}"; fi
    done
}

cd "${NIX_BUILD_TOP:-$TMPDIR}"
genericBuild
