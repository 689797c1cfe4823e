#!/usr/bin/env bash
# The test command (README, .ci/run): installs whatever is missing — the Python venv with pytest,
# bubblewrap, llama-server (built once per machine, cached in ~/.cache/fixbench), the SmolLM2
# model, the agents — then runs the whole test suite, real llama-server and real agents included.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
scripts/setup.sh
# The integration tests drive the debug binary; unit and integration tests share the build.
cargo test --locked
