# python -m framework --help
from framework.cli import main

raise SystemExit(main())
