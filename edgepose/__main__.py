import sys

from edgepose.app.cli import main

sys.exit(main())
