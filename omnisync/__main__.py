from omnisync.cli import main

main()
