#!/usr/bin/env bash
# Performance regression gate: instructions counted by valgrind (callgrind) on the core's hot
# paths, compared with the committed baseline. Instruction counts do not depend on machine load.
#
#   bash .ci/perf-gate.sh            # check: fails when a path costs more than THRESHOLD % above
#                                    # its baseline (or a path has no baseline)
#   bash .ci/perf-gate.sh --update   # re-count and rewrite benches/gate/baseline.json
#
# Each path of benches/gate runs in its own process, `gate PATH ITERATIONS`; callgrind counts only
# inside the function `measured` (--toggle-collect), i.e. the path itself, after its inputs were
# prepared and one warm-up run. The number compared is instructions per run of the path.
#
# Threshold: 3 %. Measured on this code: repeated counts of the same binary are identical or
# differ by < 0.1 % (std's randomly seeded HashMap moves a few probes), so 3 % is far above
# noise, yet far below what the regressions we guard against cost: a serde_json `Value` tree
# put back on the ID-token payload, eager scope compilation, or an extra copy of the token are
# 10-50 % on their path. A toolchain or dependency update (rustc, serde_json, ring) can move
# counts by a few percent; then inspect and re-run with --update in the same commit as the
# update, saying why in the message. PERF_GATE_THRESHOLD overrides the percentage.
# PERF_GATE_CARGO_FLAGS (e.g. "--no-default-features --features rustcrypto") counts another crypto
# backend against the (ring) baseline: a comparison for reading, not a gate.
set -euo pipefail
cd "$(dirname "$0")/.."

baseline=benches/gate/baseline.json
threshold=${PERF_GATE_THRESHOLD:-3}
update=false
case "${1:-}" in
    --update) update=true ;;
    "") ;;
    *) echo "usage: bash .ci/perf-gate.sh [--update]" >&2; exit 2 ;;
esac

if ! command -v valgrind >/dev/null 2>&1; then
    echo "valgrind not found; installing it (Debian package valgrind)" >&2
    { apt-get update -qq && apt-get install -y -qq valgrind >/dev/null; } || {
        echo "valgrind is required for the performance gate" >&2
        exit 1
    }
fi

# shellcheck disable=SC2086 # word splitting of the flags is wanted
cargo build --release --locked -q -p authpi-idp-bench-gate ${PERF_GATE_CARGO_FLAGS:-}
bin=target/release/gate
"$bin" check >/dev/null

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# path -> instructions per run, measured now
: >"$tmp/now"
while read -r path iterations; do
    if ! valgrind --tool=callgrind --callgrind-out-file="$tmp/$path.out" \
        --collect-atstart=no --toggle-collect='*gate::measured' \
        "$bin" "$path" "$iterations" 2>"$tmp/$path.log"; then
        cat "$tmp/$path.log" >&2
        exit 1
    fi
    total=$(awk '/^totals:/ { print $2 }' "$tmp/$path.out")
    if [ -z "$total" ] || [ "$total" -eq 0 ]; then
        echo "perf gate: no instructions counted for $path (was measured() inlined or renamed?)" >&2
        exit 1
    fi
    echo "$path $(( (total + iterations / 2) / iterations ))" >>"$tmp/now"
done < <("$bin" list)

if $update; then
    {
        echo "{"
        echo "  \"note\": \"instructions per run of each path, counted by bash .ci/perf-gate.sh --update\","
        echo "  \"rustc\": \"$(rustc --version)\","
        echo "  \"valgrind\": \"$(valgrind --version)\","
        echo "  \"instructions\": {"
        awk 'NR > 1 { print line "," } { line = "    \"" $1 "\": " $2 } END { print line }' "$tmp/now"
        echo "  }"
        echo "}"
    } >"$baseline"
    echo "perf gate: baseline written to $baseline"
    cat "$baseline"
    exit 0
fi

if [ ! -f "$baseline" ]; then
    echo "perf gate: $baseline is missing; create it with bash .ci/perf-gate.sh --update" >&2
    exit 1
fi
# "    \"path\": 1234," lines of the baseline -> "path 1234"
sed -n 's/^ *"\([a-z0-9_]*\)": \([0-9][0-9]*\),\{0,1\}$/\1 \2/p' "$baseline" >"$tmp/base"

awk -v threshold="$threshold" '
    NR == FNR { base[$1] = $2; next }
    {
        if (!($1 in base)) {
            printf "%-34s %12s %12d   no baseline\n", $1, "-", $2
            fail = 1
            next
        }
        change = 100 * ($2 - base[$1]) / base[$1]
        verdict = change > threshold ? "REGRESSION" : (change < -threshold ? "improved: run --update" : "ok")
        if (change > threshold) fail = 1
        printf "%-34s %12d %12d %+8.2f %%  %s\n", $1, base[$1], $2, change, verdict
    }
    BEGIN { printf "%-34s %12s %12s %10s  (threshold +%s %%)\n", "path", "baseline", "now", "change", threshold }
    END {
        if (fail) { print "perf gate: FAILED (a path costs more instructions than its baseline allows)"; exit 1 }
        print "perf gate: ok"
    }
' "$tmp/base" "$tmp/now"
