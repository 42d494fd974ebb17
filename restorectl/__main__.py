import sys

from restorectl.cli import main

sys.exit(main())
