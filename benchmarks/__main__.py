import sys

if "--resize" in sys.argv[1:]:  # the image resize benchmark (benchmarks/resize.py)
    from .resize import main as resize_main

    sys.exit(resize_main([a for a in sys.argv[1:] if a != "--resize"]))

from .harness import main

sys.exit(main())
