#!/usr/bin/env bash
# Build and install reflow from this checkout, plus shell completions.
# Run ./install.sh --help for usage.
set -euo pipefail

PROG=${0##*/}
REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

usage() {
    cat <<USAGE
usage: ./$PROG [--prefix DIR] [--dry-run]

Builds reflow from this checkout and installs it with
    cargo install --locked --path . --root PREFIX
(the binary ends up in PREFIX/bin/reflow), then installs the shell completions
from completions/ (any that are missing are skipped with a note).

Options:
  --prefix DIR   install under DIR instead of ~/.local; completions then go to
                 DIR/share/bash-completion/completions/reflow,
                 DIR/share/zsh/site-functions/_reflow,
                 DIR/share/fish/vendor_completions.d/reflow.fish
  --dry-run      print the commands instead of running them
  -h, --help     show this help

Without --prefix: binary in ~/.local/bin, completions in
  ~/.local/share/bash-completion/completions/reflow
  ~/.local/share/zsh/site-functions/_reflow
  ~/.config/fish/completions/reflow.fish
(\$XDG_DATA_HOME / \$XDG_CONFIG_HOME are honoured when set.)
USAGE
}

die() { printf '%s: error: %s\n' "$PROG" "$*" >&2; exit 1; }
note() { printf '%s\n' "$*"; }

PREFIX=""
DRY_RUN=0
while (($# > 0)); do
    case $1 in
        -h | --help) usage; exit 0 ;;
        --dry-run) DRY_RUN=1 ;;
        --prefix)
            (($# >= 2)) || die "--prefix needs a directory argument (see --help)"
            [[ -n $2 ]] || die "--prefix must not be empty"
            PREFIX=$2
            shift
            ;;
        --prefix=*)
            PREFIX=${1#--prefix=}
            [[ -n $PREFIX ]] || die "--prefix must not be empty"
            ;;
        *) usage >&2; die "unknown argument: $1" ;;
    esac
    shift
done

# Echo the command; run it unless --dry-run.
run() {
    if ((DRY_RUN)); then
        printf '+'
        printf ' %q' "$@"
        printf '\n'
    else
        "$@"
    fi
}

[[ -n ${HOME:-} ]] || die "HOME is not set"

if [[ -n $PREFIX ]]; then
    # A literal "~" or "~/x" (e.g. from --prefix=~/x, which the shell does not expand).
    # shellcheck disable=SC2088
    case $PREFIX in
        "~") PREFIX=$HOME ;;
        "~/"*) PREFIX=$HOME/${PREFIX#"~/"} ;;
        /*) ;;
        *) PREFIX=$PWD/$PREFIX ;;
    esac
    ROOT=$PREFIX
    BASH_DIR=$PREFIX/share/bash-completion/completions
    ZSH_DIR=$PREFIX/share/zsh/site-functions
    FISH_DIR=$PREFIX/share/fish/vendor_completions.d
else
    ROOT=$HOME/.local
    data_home=${XDG_DATA_HOME:-$HOME/.local/share}
    BASH_DIR=$data_home/bash-completion/completions
    ZSH_DIR=$data_home/zsh/site-functions
    FISH_DIR=${XDG_CONFIG_HOME:-$HOME/.config}/fish/completions
fi

if ! command -v cargo >/dev/null 2>&1; then
    if ((DRY_RUN)); then
        note "note: cargo not found on PATH (a real run needs Rust: https://rustup.rs)"
    else
        die "cargo not found on PATH; install Rust first (https://rustup.rs)"
    fi
fi

((DRY_RUN)) && note "dry run: printing the commands instead of running them"

note "==> building and installing reflow into $ROOT/bin"
run cargo install --locked --path "$REPO_ROOT" --root "$ROOT"

note "==> installing shell completions"
installed=()
install_completion() {
    local src=$REPO_ROOT/completions/$1 dir=$2 name=$3 shell=$4
    if [[ ! -f $src ]]; then
        note "    skipping $shell completion: completions/$1 not found in this checkout"
        return 0
    fi
    run mkdir -p "$dir"
    run cp "$src" "$dir/$name"
    installed+=("$shell")
    note "    $shell: $dir/$name"
}
install_completion reflow.bash "$BASH_DIR" reflow bash
install_completion _reflow "$ZSH_DIR" _reflow zsh
install_completion reflow.fish "$FISH_DIR" reflow.fish fish

if ((DRY_RUN)); then
    note "==> dry run done; nothing was changed"
else
    note "==> installed $ROOT/bin/reflow"
fi
case ":${PATH:-}:" in
    *":$ROOT/bin:"*) ;;
    *) note "note: $ROOT/bin is not on your PATH; add it, e.g.: export PATH=\"$ROOT/bin:\$PATH\"" ;;
esac
for sh in "${installed[@]+"${installed[@]}"}"; do
    case $sh in
        zsh) note "note (zsh): make sure $ZSH_DIR is on \$fpath before compinit, e.g. fpath=($ZSH_DIR \$fpath)" ;;
        bash | fish)
            if [[ -n $PREFIX ]]; then
                note "note ($sh): $sh only finds completions under $PREFIX/share if it is in \$XDG_DATA_DIRS"
            fi
            ;;
    esac
done
note ""
note "Next step: run 'reflow serve'"
