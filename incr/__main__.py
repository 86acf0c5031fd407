from incr.cli.main import main

main()
