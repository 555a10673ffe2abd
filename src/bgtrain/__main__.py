from bgtrain.cli import main

raise SystemExit(main())
