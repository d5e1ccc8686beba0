#!/usr/bin/env bash
# Dependency count and clean release build time: authpi-idp (default features) against
# openidconnect 4 (default-features = false, i.e. no HTTP client: the same job as our sans-IO
# core). Both in the same run, each in its own fresh target dir, one after the other.
# Usage: bash benches/build-cost.sh   (from the repo root; takes a few minutes)
set -euo pipefail
cd "$(dirname "$0")/.."
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

echo "== dependency count (normal edges, unique crates incl. the root)"
echo '$ cargo tree -e normal -p authpi-idp --prefix none --format "{p}" | sed "s/ (.*//" | sort -u | wc -l'
ours=$(cargo tree -e normal -p authpi-idp --prefix none --format "{p}" | sed 's/ (.*//' | sort -u | wc -l)
echo "authpi-idp: $ours"

mkdir -p "$scratch/oidc/src"
cat >"$scratch/oidc/Cargo.toml" <<'EOF'
[package]
name = "oidc-build-probe"
version = "0.0.0"
edition = "2021"
publish = false
[dependencies]
openidconnect = { version = "4", default-features = false }
[workspace]
EOF
echo 'pub use openidconnect;' >"$scratch/oidc/src/lib.rs"
theirs=$(cd "$scratch/oidc" && cargo tree -e normal -p openidconnect --prefix none --format "{p}" | sed 's/ (.*//' | sort -u | wc -l)
echo "openidconnect (default-features = false): $theirs"

echo "== clean release builds (jobs = $(nproc))"
cargo fetch --locked >/dev/null 2>&1 || true
t0=$(date +%s.%N)
CARGO_TARGET_DIR="$scratch/t-ours" cargo build --release --locked -p authpi-idp -q
t1=$(date +%s.%N)
(cd "$scratch/oidc" && CARGO_TARGET_DIR="$scratch/t-oidc" cargo build --release -q)
t2=$(date +%s.%N)
awk -v a="$t0" -v b="$t1" -v c="$t2" 'BEGIN {
  ours = b - a; oidc = c - b;
  printf "authpi-idp: %.1f s\nopenidconnect: %.1f s\nratio ours/openidconnect: %.2f\n", ours, oidc, ours / oidc }'
