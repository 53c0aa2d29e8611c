from toctou.cli import main

main()
