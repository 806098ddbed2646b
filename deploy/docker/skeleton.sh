#!/bin/sh
# Copies the workspace's manifests from SRC to DEST and gives every crate stub
# sources, so `cargo build` in DEST compiles the dependencies alone. Used by the
# Dockerfile's plan stage: its output changes only when a manifest does, so the
# dependency layer built from it stays cached across source edits.
set -eu
src="$1"
dest="$2"
cd "$src"
# Patched dependencies (vendor/, `[patch.crates-io]`) are dependencies: whole.
if [ -d vendor ]; then
    mkdir -p "$dest"
    cp -R vendor "$dest/vendor"
fi
find . \( -path ./target -o -path ./vendor \) -prune -o \( -name Cargo.toml -o -name Cargo.lock -o -name 'rust-toolchain*' \) -print |
    while read -r f; do
        mkdir -p "$dest/$(dirname "$f")"
        cp "$f" "$dest/$f"
    done
cd "$dest"
find . -name Cargo.toml -not -path ./Cargo.toml -not -path './vendor/*' | while read -r manifest; do
    dir=$(dirname "$manifest")
    # The crate's own target files (inferred and explicit [[bin]] path = ...),
    # each as a stub: an empty library, or an empty main.
    {
        for f in src/lib.rs src/main.rs build.rs; do echo "$f"; done
        (cd "$src/$dir" && find src/bin -name '*.rs' 2>/dev/null || true)
        sed -n 's/^ *path *= *"\([^"]*\.rs\)".*/\1/p' "$manifest"
    } | sort -u | while read -r target; do
        [ -f "$src/$dir/$target" ] || continue
        mkdir -p "$dir/$(dirname "$target")"
        if [ "$target" = src/lib.rs ]; then
            : >"$dir/$target"
        else
            echo 'fn main() {}' >"$dir/$target"
        fi
    done
done
