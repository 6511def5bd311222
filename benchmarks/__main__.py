import sys

if "--resize" in sys.argv[1:]:  # the image resize benchmark (benchmarks/resize.py)
    from .resize import main as resize_main

    sys.exit(resize_main([a for a in sys.argv[1:] if a != "--resize"]))

if "--dask" in sys.argv[1:]:  # images/s with and without Dask (benchmarks/dask_bench.py)
    from .dask_bench import main as dask_main

    sys.exit(dask_main([a for a in sys.argv[1:] if a != "--dask"]))

from .harness import main

sys.exit(main())
