#!/usr/bin/env bash
# Sanitizer and fuzzing runs (issue 14). Builds with clang and runs:
#
#   asan    ASan + UBSan (-fsanitize=address,undefined, alignment included,
#           -fno-sanitize-recover=all: the first report fails the run): the
#           whole C++ test suite (ctest), then the Python fault catalogue
#           (tests/python/test_faults.py) against an extension built the same
#           way, with the ASan runtime preloaded into the interpreter.
#   tsan    TSan (-fsanitize=thread): the C++ tests that run threads (the
#           thread pool, concurrent forwards, mutators racing forwards,
#           threaded resampling) - see TSAN_FILTER below.
#   fuzz    libFuzzer (built by the asan step, so also under ASan + UBSan):
#           fuzz_safetensors and fuzz_pth, and atheris on the .npz reader,
#           each for FUZZ_SECONDS (default 60) with a fixed -seed, starting
#           from the committed seed corpora (tests/fuzz/corpus, copied: the
#           committed corpus never changes). A crash leaves its input in
#           $BUILD/fuzz-artifacts and fails the run.
#
# Usage: tests/sanitize.sh [asan] [tsan] [fuzz] [python]   (no argument: all)
#   BUILD=build/sanitize (where the builds go)   JOBS=2   FUZZ_SECONDS=60
#   CXX=clang++ (a clang with compiler-rt: Debian's clang-14 + libclang-rt-14-dev)
#
# CI (.ci/run) runs `asan tsan fuzz` with FUZZ_SECONDS=30; the Python part of
# asan (`python`) needs pybind11 and runs in CI too. Timings on the 2-core CI
# machine are in README.md ("Reliability").
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BUILD=${BUILD:-$ROOT/build/sanitize}
JOBS=${JOBS:-2}
FUZZ_SECONDS=${FUZZ_SECONDS:-60}
CXX=${CXX:-clang++}
CC=${CC:-clang}
PYTHON=${PYTHON:-python3}
steps=("$@")
[ ${#steps[@]} -eq 0 ] && steps=(asan python tsan fuzz)
has() { local s; for s in "${steps[@]}"; do [ "$s" = "$1" ] && return 0; done; return 1; }

# The first report of any kind fails the run. Leaks are checked in the C++
# suite (not under Python, whose interpreter keeps objects alive at exit).
export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1:strict_string_checks=1:detect_stack_use_after_return=1:check_initialization_order=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export TSAN_OPTIONS=${TSAN_OPTIONS:-halt_on_error=1:second_deadlock_stack=1}

# Left out of the ASan ctest run (CI time): the scalar tier's real-shape kernel
# sweeps (250 s and 190 s each under ASan on 2 cores); the same kernels run on
# smaller shapes in the other kernel tests, and the AVX2 tier's sweeps run.
ASAN_CTEST_EXCLUDE=${ASAN_CTEST_EXCLUDE:-'KernelRealShapes\.MatchReference/scalar_'}

step_start=$SECONDS
# Wall time per step, and the CPU time (user, system) of all steps so far: on a
# shared machine the CPU time is the figure that carries over.
step_done() {
  times >"$BUILD/.times"  # (in this shell: a $(times) subshell has no children)
  echo "== ($1: $((SECONDS - step_start)) s wall; CPU of all steps so far, user and system: $(tail -n 1 "$BUILD/.times"))"
  step_start=$SECONDS
}

# The C++ tests that exercise threads (TSan's subset; the rest run single-threaded).
TSAN_FILTER='*Thread*:*thread*:*Concurren*:*concurren*:*Parallel*:*parallel*:*Race*:*race*:*Pool*:*Cancel*:*Fork*'

configure() {  # configure DIR SANITIZERS EXTRA_CMAKE_ARGS...
  local dir=$1 san=$2
  shift 2
  # -O1 (ASan's advice; it compiles the generated microkernels much faster than
  # -O2). No SIMDe-emulated AVX-512 kernel tests: compiling the emulation under
  # a sanitizer takes over 10 minutes on 2 cores (the plain build runs them).
  CC=$CC CXX=$CXX cmake -S "$ROOT" -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g -DNDEBUG" \
    -DPYFLAME_VISION_BUILD_TESTS=ON -DPYFLAME_VISION_SANITIZE="$san" -DPYFLAME_VISION_AVX512_EMULATION=OFF \
    "$@" >/dev/null
}

if has asan || has fuzz || has python; then
  echo "== ASan + UBSan build ($BUILD/asan)"
  extra=(-DPYFLAME_VISION_BUILD_FUZZERS=ON)
  if has python; then
    extra+=(-DPYFLAME_VISION_BUILD_PYTHON=ON -DPython_EXECUTABLE="$(command -v "$PYTHON")"
            -Dpybind11_DIR="$("$PYTHON" -m pybind11 --cmakedir)")
  fi
  configure "$BUILD/asan" address,undefined "${extra[@]}"
  cmake --build "$BUILD/asan" -j"$JOBS"
  step_done "ASan build"
fi

if has asan; then
  echo "== ASan + UBSan: the C++ test suite"
  ctest --test-dir "$BUILD/asan" -j"$JOBS" --output-on-failure --timeout 1200 -E "$ASAN_CTEST_EXCLUDE"
  step_done "ASan ctest"
fi

if has python; then
  echo "== ASan + UBSan: the Python fault catalogue (tests/python/test_faults.py)"
  # The package from the source tree with the sanitized extension, ahead of any installed copy.
  stage="$BUILD/asan/python-stage"
  rm -rf "$stage"
  mkdir -p "$stage"
  cp -r "$ROOT/python/pyflame_vision" "$stage/"
  rm -f "$stage"/pyflame_vision/_core*.so
  cp "$BUILD"/asan/_core*.so "$stage/pyflame_vision/"
  runtime=$("$CXX" -print-file-name=libclang_rt.asan-x86_64.so)
  # Leak checking is off: the interpreter keeps objects alive at exit on purpose.
  # The parity tests need torch, whose own code is not instrumented; they run too.
  # An editable install (pip install -e) puts a finder ahead of PYTHONPATH: it is
  # dropped, and the run fails unless the sanitized extension is the one loaded.
  PYTHONPATH="$stage" LD_PRELOAD="$runtime" \
    ASAN_OPTIONS="abort_on_error=1:detect_leaks=0:strict_string_checks=1" \
    PYFLAME_VISION_SANITIZED=1 \
    "$PYTHON" - "$stage" "$ROOT/tests/python/test_faults.py" \
    "not deflate_bomb and not fp_environment and not multiprocessing and not os_fork and not ctrl_c" <<'PY'
import sys
stage, tests, select = sys.argv[1:]
sys.meta_path[:] = [f for f in sys.meta_path if "editable" not in type(f).__module__]
import pyflame_vision._core as core  # noqa: E402
if not core.__file__.startswith(stage):
    sys.exit(f"sanitize.sh: expected the ASan build of the extension from {stage}, got {core.__file__}")
import pytest  # noqa: E402
sys.exit(pytest.main(["-q", "-p", "no:cacheprovider", tests, "-k", select]))
PY
  step_done "ASan Python"
fi

if has tsan; then
  echo "== TSan build ($BUILD/tsan) and the threaded C++ tests"
  configure "$BUILD/tsan" thread
  cmake --build "$BUILD/tsan" -j"$JOBS" --target pyflame_vision_tests
  step_done "TSan build"
  "$BUILD/tsan/pyflame_vision_tests" --gtest_filter="$TSAN_FILTER" --gtest_brief=1
  step_done "TSan tests"
fi

if has fuzz; then
  echo "== Fuzzing: ${FUZZ_SECONDS}s per target, -seed=1, from tests/fuzz/corpus"
  artifacts="$BUILD/fuzz-artifacts"
  mkdir -p "$artifacts"
  for target in safetensors pth; do
    work="$BUILD/fuzz-corpus/$target"
    rm -rf "$work"
    mkdir -p "$work"
    cp "$ROOT/tests/fuzz/corpus/$target"/* "$work/"
    ASAN_OPTIONS="abort_on_error=1:detect_leaks=1:malloc_limit_mb=2048" \
      "$BUILD/asan/fuzz_$target" "$work" -dict="$ROOT/tests/fuzz/$target.dict" -seed=1 \
      -max_total_time="$FUZZ_SECONDS" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
      -artifact_prefix="$artifacts/$target-" -print_final_stats=1 2>&1 | tail -n 12
  done
  if "$PYTHON" -c "import atheris" 2>/dev/null; then
    work="$BUILD/fuzz-corpus/npz"
    rm -rf "$work"
    mkdir -p "$work"
    cp "$ROOT/tests/fuzz/corpus/npz"/* "$work/"
    "$PYTHON" "$ROOT/tests/fuzz/fuzz_npz.py" "$work" -seed=1 -max_total_time="$FUZZ_SECONDS" -timeout=10 \
      -rss_limit_mb=2048 -max_len=65536 -artifact_prefix="$artifacts/npz-" -print_final_stats=1 2>&1 | tail -n 12
    step_done "fuzzing"
  else
    echo "atheris is not installed (pip install 'pyflame-vision[fuzz]'): the .npz fuzzer did not run" >&2
    exit 1
  fi
fi
echo "== sanitize.sh: ${steps[*]}: clean"
