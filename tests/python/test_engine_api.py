"""The engine's Python API: input checks, layouts, batch 0, threads, ISA tiers, the GIL,
execution plans, NaN propagation, running without weights and model surgery."""

from __future__ import annotations

import os
import pickle
import re
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import pyflame_vision
import pyflame_vision.models as models
from conftest import ISA_TIERS, ROOT, numpy_state_dict, require_torchvision, tv_model_random_bn
from pyflame_vision import TensorSpec

SMALL_MODELS = ["resnet18", "efficientnet_b0"]


def make_input(shape, seed=0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def model_with_weights(name: str, seed: int = 0, **kwargs):
    m = getattr(models, name)(**kwargs)
    m.init_weights(seed=seed)
    return m


@pytest.fixture(scope="module")
def resnet18():
    return model_with_weights("resnet18")


@pytest.fixture(scope="module")
def effnet_b0():
    return model_with_weights("efficientnet_b0")


@pytest.fixture(scope="module")
def small_models(resnet18, effnet_b0):
    return {"resnet18": resnet18, "efficientnet_b0": effnet_b0}


@pytest.fixture
def restore_engine():
    """Restores the thread count and ISA cap a test changes."""
    threads, isa = pyflame_vision.get_num_threads(), pyflame_vision.active_isa()
    yield
    pyflame_vision.set_num_threads(threads)
    pyflame_vision.set_max_isa(isa)


def run_python(code: str, **env_vars: str) -> subprocess.CompletedProcess:
    """Runs `code` in a fresh interpreter with the PYFLAME_VISION_* environment replaced by env_vars."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYFLAME_VISION_")}
    env.update(env_vars)
    proc = subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    return proc


# ---------------------------------------------------------------------------------------------
# Input checks


@pytest.mark.parametrize("dtype", [np.float64, np.float16, np.uint8, np.int32, np.int64, np.bool_])
@pytest.mark.parametrize("name", SMALL_MODELS)
def test_non_float32_input_is_refused_not_cast(small_models, name, dtype):
    m = small_models[name]
    x = np.ones((1, 3, 32, 32), dtype=dtype)
    for call in (m, m.forward, m.forward_features):
        with pytest.raises(pyflame_vision.DTypeError) as info:
            call(x)
        assert isinstance(info.value, TypeError)
        msg = str(info.value)
        assert np.dtype(dtype).name in msg, msg
        assert re.search(r"astype\((numpy|np)\.float32\)", msg), msg


@pytest.mark.parametrize("name", SMALL_MODELS)
def test_float32_after_pickle_is_accepted(small_models, name):
    # Regression: the dtype check compared dtype objects by identity, and an array that went
    # through pickle (multiprocessing, Dask) has an equal but distinct float32 dtype.
    m = small_models[name]
    x = make_input((1, 3, 32, 32), 3)
    y = pickle.loads(pickle.dumps(x))
    assert y.dtype == np.float32 and y.dtype is not x.dtype
    assert np.array_equal(m(y), m(x))
    state = {k: pickle.loads(pickle.dumps(v)) for k, v in m.state_dict().items()}
    m.load_state_dict(state)
    assert np.array_equal(m(y), m(x))
    be = x.astype(">f4")  # equal values, non-native byte order: refused with the dtype named
    with pytest.raises(pyflame_vision.DTypeError, match=">f4"):
        m(be)


@pytest.mark.parametrize("shape", [(3, 32, 32), (1, 1, 3, 32, 32), (32, 32), (1, 4, 32, 32), (1, 1, 32, 32),
                                   (2, 0, 32, 32)])
@pytest.mark.parametrize("name", SMALL_MODELS)
def test_wrong_rank_or_channels_raise_shape_error_naming_the_layer(small_models, name, shape):
    m = small_models[name]
    x = np.zeros(shape, dtype=np.float32)
    # A wrong rank is reported for the input itself; wrong channels name the first conv.
    first_layer = "input" if len(shape) != 4 else "conv1" if name.startswith("resnet") else "features.0.0"
    for call in (m, m.forward_features):
        with pytest.raises(pyflame_vision.ShapeError) as info:
            call(x)
        assert isinstance(info.value, ValueError)
        assert first_layer in str(info.value), str(info.value)


@pytest.mark.parametrize("name", SMALL_MODELS)
def test_empty_spatial_input_raises(small_models, name):
    with pytest.raises(ValueError):
        small_models[name](np.zeros((1, 3, 0, 0), dtype=np.float32))


def layouts(shape):
    """(label, array) pairs: float32 arrays with the same values as make_input(shape) in odd memory layouts."""
    n, c, h, w = shape
    base = make_input(shape, seed=5)
    big = np.zeros((n, c, 2 * h, 2 * w), dtype=np.float32)
    big[:, :, ::2, ::2] = base
    transposed = np.ascontiguousarray(base.transpose(0, 1, 3, 2)).transpose(0, 1, 3, 2)
    channels_last = np.ascontiguousarray(base.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
    flipped = np.ascontiguousarray(base[:, :, ::-1, ::-1])[:, :, ::-1, ::-1]
    readonly = base.copy()
    readonly.setflags(write=False)
    buf = np.empty(base.size + 1, dtype=np.float32)
    misaligned = buf[1:].reshape(shape)  # C-contiguous, data pointer 4 bytes off any SIMD alignment
    misaligned[...] = base
    batch_strided = np.zeros((2 * n, c, h, w), dtype=np.float32)
    batch_strided[::2] = base
    return base, [
        ("strided", big[:, :, ::2, ::2]),
        ("transposed", transposed),
        ("channels_last", channels_last),
        ("fortran", np.asfortranarray(base)),
        ("negative_strides", flipped),
        ("readonly", readonly),
        ("misaligned", misaligned),
        ("batch_strided", batch_strided[::2]),
    ]


@pytest.mark.parametrize("name", SMALL_MODELS)
def test_any_float32_layout_gives_bit_identical_results(small_models, name):
    m = small_models[name]
    base, cases = layouts((2, 3, 40, 48))
    expected = m(base)
    expected_features = m.forward_features(base)
    for label, x in cases:
        assert np.array_equal(x, base), label
        before = x.copy()
        assert np.array_equal(m(x), expected), label
        feats = m.forward_features(x)
        if isinstance(feats, list):
            assert len(feats) == len(expected_features) and all(map(np.array_equal, feats, expected_features)), label
        else:
            assert np.array_equal(feats, expected_features), label
        assert np.array_equal(x, before), f"{label}: the input was modified"
    # Also equal to np.ascontiguousarray of the same view (the definition in the spec).
    x = layouts((2, 3, 40, 48))[1][0][1]
    assert np.array_equal(m(x), m(np.ascontiguousarray(x)))


def test_outputs_do_not_alias_each_other_or_internal_buffers(resnet18):
    x1, x2 = make_input((1, 3, 32, 32), 1), make_input((1, 3, 32, 32), 2)
    y1 = resnet18(x1)
    f1 = resnet18.forward_features(x1)
    saved_y1, saved_f1 = y1.copy(), [f.copy() for f in f1]
    y2 = resnet18(x2)
    resnet18.forward_features(x2)
    assert not np.array_equal(y1, y2)
    assert np.array_equal(y1, saved_y1), "a later call overwrote an earlier output"
    assert all(np.array_equal(a, b) for a, b in zip(f1, saved_f1))
    y1[...] = 0  # writing into an output must not affect the next call
    assert np.array_equal(resnet18(x1), saved_y1)


@pytest.mark.parametrize("name", SMALL_MODELS)
def test_batch_zero(name):
    m = model_with_weights(name, num_classes=7)
    out = m(np.zeros((0, 3, 64, 64), dtype=np.float32))
    assert isinstance(out, np.ndarray) and out.dtype == np.float32 and out.shape == (0, 7)
    feats = m.forward_features(np.zeros((0, 3, 64, 64), dtype=np.float32))
    specs = m.forward_features([0, 3, 64, 64])
    if isinstance(specs, list):
        assert [f.shape for f in feats] == [tuple(s.shape) for s in specs]
        assert all(f.dtype == np.float32 for f in feats)
    else:
        assert feats.shape == tuple(specs.shape) and feats.dtype == np.float32
    # A later non-empty batch on the same model still works.
    assert m(make_input((1, 3, 64, 64))).shape == (1, 7)


def test_shapes_and_specs_still_return_specs(resnet18):
    assert resnet18.forward([2, 3, 64, 64]) == TensorSpec([2, 1000])
    assert resnet18(TensorSpec([1, 3, 64, 64])) == TensorSpec([1, 1000])
    assert resnet18.forward_features([1, 3, 64, 64])[-1] == TensorSpec([1, 512, 2, 2])


# ---------------------------------------------------------------------------------------------
# Threads


def test_thread_api(restore_engine):
    assert pyflame_vision.get_num_threads() >= 1
    for n in (1, 2, 3):
        pyflame_vision.set_num_threads(n)
        assert pyflame_vision.get_num_threads() == n
    for bad in (0, -1):
        with pytest.raises(pyflame_vision.InvalidArgumentError) as info:
            pyflame_vision.set_num_threads(bad)
        assert isinstance(info.value, ValueError)
    with pytest.raises(TypeError):
        pyflame_vision.set_num_threads(True)
    with pytest.raises(TypeError):
        pyflame_vision.set_num_threads(2.0)
    pyflame_vision.set_num_threads(np.int64(2))  # any integer (operator.index) is an int
    assert pyflame_vision.get_num_threads() == 2
    pyflame_vision.set_num_threads(3)
    assert pyflame_vision.get_num_threads() == 3, "a refused call changed the thread count"


def test_num_threads_environment_variable():
    code = "import pyflame_vision as p; print(p.get_num_threads())"
    assert run_python(code, PYFLAME_VISION_NUM_THREADS="3").stdout.split() == ["3"]
    assert run_python(code, PYFLAME_VISION_NUM_THREADS="1").stdout.split() == ["1"]
    assert int(run_python(code).stdout) >= 1


@pytest.mark.parametrize("var, value", [("PYFLAME_VISION_NUM_THREADS", "0"), ("PYFLAME_VISION_NUM_THREADS", "abc"),
                                        ("PYFLAME_VISION_MAX_ISA", "sse9")])
def test_invalid_environment_values_are_reported_by_name(var, value):
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYFLAME_VISION_")}
    env[var] = value
    code = "import pyflame_vision as p; print(p.get_num_threads(), p.active_isa())"
    proc = subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0 or var in proc.stderr, "an invalid setting was ignored silently"
    assert var in proc.stderr and value in proc.stderr, proc.stderr


@pytest.mark.parametrize("name", ["resnet18", "resnext50_32x4d", "efficientnet_b0"])
def test_bit_identical_across_thread_counts(name, restore_engine):
    m = model_with_weights(name)
    x = make_input((2, 3, 64, 72), 3)
    results = []
    for n in (1, 2, 1, 3):
        pyflame_vision.set_num_threads(n)
        out = m(x)
        feats = m.forward_features(x)
        results.append((out, feats if isinstance(feats, list) else [feats]))
    out0, feats0 = results[0]
    for out, feats in results[1:]:
        assert np.array_equal(out, out0)
        assert len(feats) == len(feats0) and all(map(np.array_equal, feats, feats0))


@pytest.mark.parametrize("name", SMALL_MODELS)
def test_concurrent_calls_on_one_model_are_bit_identical(small_models, name):
    m = small_models[name]
    xs = [make_input((1 + i % 2, 3, 48, 56), seed=10 + i) for i in range(4)]
    expected = [m(x) for x in xs]
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(m, [xs[i % 4] for i in range(24)]))
    for i, out in enumerate(results):
        assert np.array_equal(out, expected[i % 4]), i


@pytest.mark.parametrize("name", SMALL_MODELS)
def test_concurrent_first_calls_compile_safely(name):
    """Threads that each bring a new input shape compile concurrently on one model."""
    m = model_with_weights(name, seed=4)
    reference = model_with_weights(name, seed=4)
    shapes = [(1, 3, 32 + 8 * i, 40) for i in range(6)] * 2
    xs = [make_input(s, seed=i) for i, s in enumerate(shapes)]
    with ThreadPoolExecutor(max_workers=6) as pool:
        results = list(pool.map(m, xs))
    for x, out in zip(xs, results):
        assert np.array_equal(out, reference(x))


def test_gil_is_released_during_forward(restore_engine):
    pyflame_vision.set_num_threads(1)
    m = model_with_weights("resnet50")
    x = make_input((1, 3, 160, 160))
    m(x)  # compile
    start = time.perf_counter()
    m(x)
    duration = time.perf_counter() - start
    assert duration > 0.03, "the forward is too quick to tell whether the GIL is held"
    done = threading.Event()

    def work():
        for _ in range(3):
            m(x)
        done.set()

    worker = threading.Thread(target=work)
    ticks = [time.perf_counter()]
    worker.start()
    while not done.is_set():
        time.sleep(0.001)
        ticks.append(time.perf_counter())
    worker.join()
    max_gap = max(b - a for a, b in zip(ticks, ticks[1:]))
    assert max_gap < duration / 2, f"the main thread stalled {max_gap:.3f}s during a {duration:.3f}s forward"


# ---------------------------------------------------------------------------------------------
# ISA tiers


def test_isa_api(restore_engine):
    detected = pyflame_vision.detected_isa()
    assert detected in ISA_TIERS
    assert pyflame_vision.active_isa() in ISA_TIERS
    assert ISA_TIERS.index(pyflame_vision.active_isa()) <= ISA_TIERS.index(detected)
    for tier in ISA_TIERS[: ISA_TIERS.index(detected) + 1]:
        pyflame_vision.set_max_isa(tier)
        assert pyflame_vision.active_isa() == tier
        assert pyflame_vision.detected_isa() == detected
    for bad in ("sse2", "AVX3", ""):
        with pytest.raises(ValueError):
            pyflame_vision.set_max_isa(bad)
    assert pyflame_vision.active_isa() == detected, "a refused call changed the cap"


def test_cap_above_detected_does_not_exceed_the_cpu(restore_engine):
    detected = pyflame_vision.detected_isa()
    try:
        pyflame_vision.set_max_isa("avx512")
    except ValueError:
        pass  # refusing a tier the CPU lacks is acceptable too
    assert ISA_TIERS.index(pyflame_vision.active_isa()) <= ISA_TIERS.index(detected)


def kernel_tiers(plan: str) -> set:
    return set(re.findall(r"__(scalar|avx2|avx512)\b", plan))


def test_switching_the_cap_recompiles(resnet18, restore_engine):
    detected = pyflame_vision.detected_isa()
    if detected == "scalar":
        pytest.skip("this CPU has only the scalar tier; nothing to switch between")
    shape = [1, 3, 64, 64]
    x = make_input(shape, 7)
    pyflame_vision.set_max_isa(detected)
    fast = resnet18(x)
    assert kernel_tiers(resnet18.execution_plan(shape)) - {"scalar"}, resnet18.execution_plan(shape)
    pyflame_vision.set_max_isa("scalar")
    assert kernel_tiers(resnet18.execution_plan(shape)) == {"scalar"}, resnet18.execution_plan(shape)
    slow = resnet18(x)
    assert np.abs(slow - fast).max() <= 1e-4 * np.abs(fast).max()
    pyflame_vision.set_max_isa(detected)
    assert np.array_equal(resnet18(x), fast)


def test_max_isa_environment_variable():
    code = ("import pyflame_vision as p, pyflame_vision.models as m\n"
            "print(p.detected_isa(), p.active_isa())\n"
            "r = m.resnet18(); r.init_weights(0)\n"
            "print(r.execution_plan([1, 3, 32, 32]))")
    out = run_python(code, PYFLAME_VISION_MAX_ISA="scalar").stdout
    first, plan = out.split("\n", 1)
    assert first.split() == [pyflame_vision.detected_isa(), "scalar"]
    assert kernel_tiers(plan) == {"scalar"}, plan


# ---------------------------------------------------------------------------------------------
# Execution plans


def test_execution_plan_resnet18_fuses_bn_and_relu(resnet18):
    plan = resnet18.execution_plan([1, 3, 224, 224])
    assert isinstance(plan, str)
    lines = plan.strip().splitlines()
    assert len(lines) >= 20  # conv1, maxpool, 16 block convs + 3 downsamples, avgpool, fc
    assert any(line.startswith("conv1+bn1+relu") for line in lines), plan
    assert any(line.startswith("layer1.0.conv1+bn1+relu") for line in lines), plan
    assert sum("+bn" in line for line in lines) >= 17, plan  # conv1 + 16 block convs (downsamples: "+1")
    assert sum("+relu" in line for line in lines) >= 17, plan
    assert not any(re.match(r"^[\w.]*bn\d?\b", line) for line in lines), "an unfused BatchNorm step:\n" + plan
    assert any("fc" in line for line in lines), plan


def test_execution_plan_efficientnet_has_depthwise_steps(effnet_b0):
    plan = effnet_b0.execution_plan([1, 3, 224, 224])
    lines = plan.strip().splitlines()
    assert len(lines) >= 30
    assert any(re.search(r"depthwise|dwconv|\bdw\b", line, re.IGNORECASE) for line in lines), plan
    assert any("+" in line for line in lines), plan


def test_verbose_prints_the_plan_at_compile_time():
    code = ("import numpy as np, pyflame_vision.models as m\n"
            "r = m.resnet18(); r.init_weights(0)\n"
            "x = np.zeros((1, 3, 32, 32), np.float32)\n"
            "r(x); r(x)\n"
            "print(r.execution_plan([1, 3, 32, 32]))")
    verbose = run_python(code, PYFLAME_VISION_VERBOSE="1")
    plan_lines = verbose.stdout.strip().splitlines()
    assert plan_lines
    for line in plan_lines:
        assert line in verbose.stderr, line
    assert verbose.stderr.count(plan_lines[0]) == 1, "printed again on a cached call"
    # Per layer: the chosen entry of the implementation list and why each earlier one was skipped.
    assert "skipped dwconv: groups 1, 3 -> 64 channels: not depthwise" in verbose.stderr
    assert "skipped gemm_1x1: kernel 7x7 is not 1x1" in verbose.stderr
    assert "chose igemm_rows: few input channels" in verbose.stderr
    assert "skipped winograd_2x2_3x3: output 4x4 is smaller than 8x8" in verbose.stderr
    quiet = run_python(code)
    assert plan_lines[0] not in quiet.stderr


def test_eval_and_train_follow_torch_for_inference(resnet18):
    assert resnet18.eval() is resnet18
    assert resnet18.train(False) is resnet18
    with pytest.raises(NotImplementedError, match="inference only"):
        resnet18.train()


# ---------------------------------------------------------------------------------------------
# NaN propagation, missing weights, model surgery


@pytest.mark.parity
@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf], ids=["nan", "inf", "-inf"])
@pytest.mark.parametrize("name", SMALL_MODELS)
def test_nan_propagates_like_torch(name, value):
    torch, _ = require_torchvision()
    tv = tv_model_random_bn(name, seed=9)
    m = getattr(models, name)()
    m.load_state_dict(numpy_state_dict(tv))
    x = make_input((2, 3, 64, 64), 11)
    x[0, 1, 10, 20] = value  # image 1 is clean
    with torch.no_grad():
        t = torch.from_numpy(x)
        ref = tv(t).numpy()
        if name.startswith("resnet"):
            y = tv.maxpool(tv.relu(tv.bn1(tv.conv1(t))))
            ref_features = [y.numpy()]
            for layer in (tv.layer1, tv.layer2, tv.layer3, tv.layer4):
                y = layer(y)
                ref_features.append(y.numpy())
        else:
            ref_features = [tv.features(t).numpy()]
    ours = m(x)
    assert np.isnan(ref[0]).any() and not np.isnan(ref[1]).any()
    assert np.array_equal(np.isnan(ours), np.isnan(ref))
    assert np.array_equal(np.isinf(ours), np.isinf(ref))
    feats = m.forward_features(x)
    feats = feats if isinstance(feats, list) else [feats]
    assert len(feats) == len(ref_features)
    for i, (a, b) in enumerate(zip(feats, ref_features)):
        assert np.array_equal(np.isnan(a), np.isnan(b)), f"features[{i}]: NaN masks differ"
        assert np.array_equal(np.isposinf(a), np.isposinf(b)), f"features[{i}]: +inf masks differ"
        assert np.array_equal(np.isneginf(a), np.isneginf(b)), f"features[{i}]: -inf masks differ"
    assert np.isfinite(ref_features[-1][1]).all()
    if name.startswith("resnet"):  # the stem has a local non-finite patch, so its mask is a real test
        assert 0 < np.sum(~np.isfinite(ref_features[0][0])) < ref_features[0][0].size


@pytest.mark.parametrize("name", SMALL_MODELS)
def test_running_without_weights_says_how_to_get_them(name):
    m = getattr(models, name)()
    assert m.has_weights is False
    x = make_input((1, 3, 32, 32))
    for call in (m, m.forward, m.forward_features):
        with pytest.raises(pyflame_vision.WeightsError) as info:
            call(x)
        assert isinstance(info.value, RuntimeError)
        msg = str(info.value)
        assert "init_weights" in msg and ("load_state_dict" in msg or "load_weights" in msg), msg
    assert m.forward([1, 3, 32, 32]) == TensorSpec([1, 1000])  # shapes need no weights
    m.init_weights(seed=0)
    assert m.has_weights is True
    assert m(x).shape == (1, 1000)


@pytest.mark.parametrize("name, channels", [("resnet18", 512), ("resnet50", 2048), ("efficientnet_b0", 1280)])
def test_removing_the_head_returns_the_last_features(name, channels):
    m = model_with_weights(name)
    x = make_input((2, 3, 64, 80), 12)
    last = m.forward_features(x)
    last = last[-1] if isinstance(last, list) else last
    if name.startswith("resnet"):
        m.remove_fc()
    else:
        m.remove_classifier()
    assert m.has_weights
    out = m(x)
    assert out.shape == (2, channels, 2, 3) == last.shape
    assert np.array_equal(out, last)
    assert np.array_equal(m.forward(x), last)
    assert m.forward([2, 3, 64, 80]) == TensorSpec([2, channels, 2, 3])


def test_other_input_shapes_share_packed_weights():
    # Each new input shape compiles again but reuses the first shape's packed
    # weights: memory grows by an activation arena, not by another copy of the
    # weights, and results equal those of a model that compiled that shape first.
    def rss_mib():
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20

    m = models.resnet50(num_classes=10)
    m.init_weights(3)
    weights_mib = sum(v.nbytes for v in m.state_dict().values()) / 2**20
    m(np.zeros((1, 3, 96, 96), np.float32))
    before = rss_mib()
    xs = [np.random.default_rng(s).standard_normal((1, 3, s, s), dtype=np.float32) for s in (64, 80, 112)]
    ys = [m(x) for x in xs]
    grown = rss_mib() - before
    assert grown < 0.5 * weights_mib, f"3 more shapes grew RSS by {grown:.0f} MiB (weights: {weights_mib:.0f} MiB)"
    fresh = models.resnet50(num_classes=10)
    fresh.load_state_dict(m.state_dict())
    for x, y in zip(xs, ys):
        assert np.array_equal(fresh(x), y)


def test_removing_the_head_after_running_recompiles():
    m = models.resnet18(num_classes=10)
    m.init_weights(4)
    x = np.random.default_rng(4).standard_normal((1, 3, 64, 64), dtype=np.float32)
    assert m(x).shape == (1, 10)  # compiled and cached for this shape
    last = m.forward_features(x)[-1]
    m.remove_fc()
    y = m(x)  # same shape, new graph: must not reuse the cached executable
    assert y.shape == (1, 512, 2, 2)
    assert np.array_equal(y, last)


def test_the_required_tier_is_detected():
    """PYFLAME_VISION_REQUIRE_ISA (CI: the tier the CPU reports) must be available; tests of it never skip."""
    from conftest import ISA_TIERS, required_isa

    detected = pyflame_vision.detected_isa()
    assert ISA_TIERS.index(detected) >= ISA_TIERS.index(required_isa()), (detected, required_isa())
