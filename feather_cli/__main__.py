import sys

from feather_cli.main import main

sys.exit(main())
