"""The dry run's stand-in for the GPU image: packages it lacks (and the suite does not carry) cannot be
imported. The suite puts this folder first on PYTHONPATH with LMFORGE_GPU_ABSENT=name,name,... so every
process of the dry run, lmforge's CLI included, fails as the GPU machine would on an import the carried
wheels do not cover. A None entry in sys.modules makes `import name` raise and find_spec answer None."""

import os
import sys

for name in filter(None, os.environ.get("LMFORGE_GPU_ABSENT", "").split(",")):
    sys.modules[name] = None  # type: ignore[assignment]
