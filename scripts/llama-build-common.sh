# Sourced by scripts/build-llama-server.sh and scripts/build-llama-cpp-python.sh, the two builds
# of llama.cpp: the CPU choice, and the gate in front of a cached build.
#
# The CPU choice (FIXBENCH_LLAMA_CPU: portable, the default, baseline or native) and the ggml
# cmake flags that follow from it: sets TARGET (the CPU level built for) and GGML_CPU (an array
# of -D flags). Portable builds for the highest x86-64 level every CPU of its kind runs, with
# every extension above it (AVX-512, AMX) off: a binary built on an AMX machine runs on one
# without. The caller defines die().
cpu_flags() { grep -m1 -E '^(flags|Features)[[:space:]]*:' /proc/cpuinfo 2>/dev/null | cut -d: -f2; }
has_all() { local f; for f in "$@"; do [[ " $(cpu_flags) " == *" $f "* ]] || return 1; done; }
CPU_CHOICE="${FIXBENCH_LLAMA_CPU:-portable}"
ARCH="$(uname -m)"
case "$CPU_CHOICE" in
native) TARGET=native; GGML_CPU=(-DGGML_NATIVE=ON) ;;
baseline|portable)
    X86_ALL=(SSE42 AVX AVX2 FMA F16C BMI2 AVX_VNNI AVX512 AVX512_VBMI AVX512_VNNI AVX512_BF16 AMX_TILE AMX_INT8 AMX_BF16)
    on=()
    case "$ARCH" in
    x86_64|amd64)
        if [[ "$CPU_CHOICE" == baseline ]]; then TARGET=x86-64
        elif has_all sse4_2 avx avx2 fma f16c bmi2; then TARGET=x86-64-avx2; on=(SSE42 AVX AVX2 FMA F16C BMI2)
        elif has_all sse4_2; then TARGET=x86-64-sse4.2; on=(SSE42)
        else TARGET=x86-64; fi
        GGML_CPU=(-DGGML_NATIVE=OFF)
        for f in "${X86_ALL[@]}"; do
            if [[ " ${on[*]} " == *" $f "* ]]; then GGML_CPU+=("-DGGML_$f=ON"); else GGML_CPU+=("-DGGML_$f=OFF"); fi
        done ;;
    aarch64|arm64)
        if [[ "$CPU_CHOICE" != baseline ]] && has_all asimddp; then TARGET=armv8.2-a+dotprod; else TARGET=armv8-a; fi
        GGML_CPU=(-DGGML_NATIVE=OFF "-DGGML_CPU_ARM_ARCH=$TARGET") ;;
    *) TARGET="$ARCH-default"; GGML_CPU=(-DGGML_NATIVE=OFF) ;;
    esac ;;
*) die "FIXBENCH_LLAMA_CPU=$CPU_CHOICE: use portable (the default), baseline or native" ;;
esac

# The gate in front of a cached build: when the caller's `rejected` (why the cached build cannot
# be used, empty when it can) finds nothing, prints $1 (what the build makes) and exits 0; with
# --check (CHECK_ONLY=1) prints why and exits 1. Else takes $DEST/.lock, waiting while another
# build holds it, looks again (that build may have made it) and returns: build. The caller
# defines die(), say() and rejected(), and sets DEST and CHECK_ONLY.
cached_or_lock() {
    local out="$1" why
    why="$(rejected)"
    if [[ -z "$why" ]]; then echo "$out"; exit 0; fi
    if (( CHECK_ONLY )); then echo "$why"; exit 1; fi
    mkdir -p "$DEST" || die "cannot create $DEST (set FIXBENCH_CACHE to a writable directory)"
    command -v flock >/dev/null || die "flock not found: apt-get install -y util-linux"
    exec 9>"$DEST/.lock"
    if ! flock -n 9; then
        say "another build holds $DEST/.lock, waiting..."
        flock 9
    fi
    why="$(rejected)"
    if [[ -z "$why" ]]; then echo "$out"; exit 0; fi
    say "$why; building"
}
