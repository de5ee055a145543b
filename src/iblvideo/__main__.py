from iblvideo.cli import main

raise SystemExit(main())
