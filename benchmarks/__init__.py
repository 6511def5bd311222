"""pyflame_vision's benchmark suite: ``python -m benchmarks`` (see benchmarks/README.md).

Whole models against PyTorch eager (NCHW and channels_last), TorchScript frozen
and ONNX Runtime in one interleaved run, peak memory per engine in separate
processes, kernel-level GFLOP/s on every layer shape of resnet50 and
efficientnet_b0, all against this machine's measured FP32 peak.
"""
