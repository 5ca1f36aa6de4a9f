import sys

from .startup import long_lived_imports

with long_lived_imports():
    from .cli import main

sys.exit(main())
