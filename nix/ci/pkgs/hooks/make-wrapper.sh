# makeWrapper / wrapProgram: a bash script that sets the environment, then execs the program.
makeWrapper() {
    local original="$1" wrapper="$2"
    shift 2
    [ -x "$original" ] || { echo "makeWrapper: $original is not executable" >&2; return 1; }
    mkdir -p "$(dirname "$wrapper")"
    local flags=""
    {
        echo "#!/bin/bash -e"
        while [ $# -gt 0 ]; do
            case "$1" in
                --set) printf 'export %s=%q\n' "$2" "$3"; shift 3 ;;
                --set-default) printf 'export %s=${%s-%q}\n' "$2" "$2" "$3"; shift 3 ;;
                --unset) printf 'unset %s\n' "$2"; shift 2 ;;
                --prefix) printf 'export %s=%q${%s:+%q}${%s}\n' "$2" "$4" "$2" "$3" "$2"; shift 4 ;;
                --suffix) printf 'export %s=${%s}${%s:+%q}%q\n' "$2" "$2" "$2" "$3" "$4"; shift 4 ;;
                --run) printf '%s\n' "$2"; shift 2 ;;
                --add-flags) flags="$flags $2"; shift 2 ;;
                --argv0) shift 2 ;;
                *) echo "makeWrapper: unknown argument $1" >&2; return 1 ;;
            esac
        done
        printf 'exec %q%s "$@"\n' "$original" "$flags"
    } >"$wrapper"
    chmod +x "$wrapper"
}

wrapProgram() {
    local program="$1"
    shift
    local hidden
    hidden="$(dirname "$program")/.$(basename "$program")-wrapped"
    mv "$program" "$hidden"
    makeWrapper "$hidden" "$program" "$@"
}
