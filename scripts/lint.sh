#!/usr/bin/env bash
# The checks CI runs before the tests: formatting (rustfmt.toml) and clippy on every target,
# warnings as errors. Installs rustfmt and clippy through rustup when they are missing.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
for tool in rustfmt clippy; do
  if ! cargo "${tool/rustfmt/fmt}" --version >/dev/null 2>&1; then
    command -v rustup >/dev/null || { echo "cargo $tool is missing and there is no rustup to add it" >&2; exit 3; }
    rustup component add "$tool"
  fi
done
cargo fmt --check
cargo clippy --locked --all-targets -- -D warnings
