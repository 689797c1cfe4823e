#!/usr/bin/env bash
# The test command (README, .ci/run): installs whatever is missing — the Python venv with pytest,
# bubblewrap, llama-server (built once per machine, cached in ~/.cache/fixbench), the SmolLM2
# model, the agents, the PyPI sdists the tests make problems from, llama-cpp-python's server, and chromium for the HTML report's tests (scripts/setup-chromium.sh) — then
# runs the whole test suite, real llama-server, real agents and a real browser included.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
scripts/setup.sh
# The browser for the HTML report's tests (tests/integration/browser.rs), checked on this machine.
out="$(scripts/setup-chromium.sh)" || { echo "test: error: scripts/setup-chromium.sh failed" >&2; exit 1; }
FIXBENCH_CHROMIUM="$(tail -n 1 <<<"$out")"
export FIXBENCH_CHROMIUM
# The real libraries made into problems by tests/integration/real_codebases.rs (PyPI sdists, pinned).
scripts/fetch-test-libs.sh >/dev/null || { echo "test: error: scripts/fetch-test-libs.sh failed" >&2; exit 1; }
# The second real server kind (tests/integration/servers.rs): llama-cpp-python's OpenAI server,
# built portably from the same sdist once per machine and smoke-tested on the model.
out="$(scripts/build-llama-cpp-python.sh)" || { echo "test: error: scripts/build-llama-cpp-python.sh failed" >&2; exit 1; }
FIXBENCH_LLAMA_CPP_PYTHON="$(tail -n 1 <<<"$out")"
export FIXBENCH_LLAMA_CPP_PYTHON
# Unit tests one at a time: the exec tests kill every new child of the test process, as
# fixbench does for an agent's orphans. The integration tests drive the real binary.
cargo test --locked --lib --bins -- --test-threads 1
cargo test --locked --test integration
