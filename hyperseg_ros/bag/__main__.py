"""`python -P -m hyperseg_ros.bag ...` is the `hyperseg_bag` console script."""
import sys

from hyperseg_ros.bag import main

sys.exit(main())
