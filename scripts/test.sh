#!/usr/bin/env bash
# The test command (README, .ci/run): installs whatever is missing — the Python venv with pytest,
# bubblewrap, llama-server (built once per machine, cached in ~/.cache/fixbench), the SmolLM2
# model, the agents — then runs the whole test suite, real llama-server and real agents included.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
scripts/setup.sh
# Unit tests one at a time: the exec tests kill every new child of the test process, as
# fixbench does for an agent's orphans. The integration tests drive the real binary.
cargo test --locked --lib --bins -- --test-threads 1
cargo test --locked --test integration
