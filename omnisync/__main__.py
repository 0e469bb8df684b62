from omnisync.launch import main

main()
