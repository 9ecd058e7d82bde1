import sys

from photo_assets.cli import main

sys.exit(main())
