#!/usr/bin/env bash
# The README's front door, verbatim: every ```sh block of its "Quick start"
# runs in a fresh clone of this repository, as a new user would run it, and
# must succeed; every ```text block after a command must appear, line for
# line, in that command's output. `make check` itself is skipped (it is the
# command that runs this script).
#
#   bash tests/readme_quickstart.sh    (from `make check-readme`)
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# A fresh clone of what is committed, with a target dir of its own so that
# nothing built here leaks in; cargo's registry cache is shared.
if ! git clone -q "$top" "$work/clone" 2>"$work/clone.err"; then
    # Not a git checkout (an exported tree), or one git will not read (owned
    # by another user): the tree as it is, without what was built.
    echo "readme: no git clone ($(head -n1 "$work/clone.err")); copying the tree"
    rm -rf "$work/clone" && mkdir "$work/clone"
    tar -C "$top" --exclude=./target --exclude=./.git -cf - . | tar -C "$work/clone" -xf -
fi
export CARGO_TARGET_DIR="$top/target/readme-clone"

# Split the quick start into blocks: "sh" or "text", one file each.
awk -v dir="$work" '
    /^## Quick start/ { in_qs = 1; next }
    in_qs && /^## / { exit }
    in_qs && /^```(sh|text)$/ { n++; kind = substr($0, 4); file = sprintf("%s/block-%02d.%s", dir, n, kind); next }
    in_qs && /^```$/ { file = ""; next }
    in_qs && file != "" { print > file }
' "$top/README.md"

ran=0; checked=0; last_out=""
for block in "$work"/block-*; do
    case "$block" in
    *.sh)
        if grep -qx 'make check' "$block"; then continue; fi
        echo "readme: running $(head -c 100 "$block")"
        last_out="$block.out"
        if ! (cd "$work/clone" && bash -euo pipefail "$block") > "$last_out" 2>"$block.err"; then
            echo "readme: FAILED: $(cat "$block")" >&2
            tail -20 "$block.err" >&2
            exit 1
        fi
        ran=$((ran + 1))
        ;;
    *.text)
        [ -n "$last_out" ] || { echo "readme: an output block comes before any command" >&2; exit 1; }
        while IFS= read -r line; do
            grep -qxF -- "$line" "$last_out" || { echo "readme: the command's output lacks: $line" >&2; exit 1; }
        done < "$block"
        checked=$((checked + 1))
        ;;
    esac
done
[ "$ran" -ge 2 ] || { echo "readme: only $ran commands found in the quick start" >&2; exit 1; }
echo "readme: $ran quick-start commands ran in a fresh clone, $checked outputs matched"
