import sys

from rachel.cli.main import main

sys.exit(main())
