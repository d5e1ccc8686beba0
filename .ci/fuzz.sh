#!/usr/bin/env bash
# Builds every fuzz target and runs each for a short fixed budget; fails on any crash.
#   FUZZ_SECONDS=20 (per target)   FUZZ_TARGETS="callback jws" (default: all)
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
budget="${FUZZ_SECONDS:-20}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"

if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi

cargo +nightly fuzz build -O
targets="${FUZZ_TARGETS:-$(cargo +nightly fuzz list)}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
status=0
for t in $targets; do
    mkdir -p "$work/$t" "corpus/$t"
    echo "== $t (${budget}s)"
    # New inputs go to the scratch corpus; the committed seeds stay as they are.
    if ! cargo +nightly fuzz run -O "$t" "$work/$t" "corpus/$t" -- \
        -max_total_time="$budget" -print_final_stats=1 >"$work/$t.log" 2>&1; then
        echo "!! $t crashed; last lines:"
        tail -n 40 "$work/$t.log"
        status=1
    else
        grep -E '^#[0-9]+.*DONE' "$work/$t.log" || tail -n 3 "$work/$t.log"
    fi
done
exit $status
