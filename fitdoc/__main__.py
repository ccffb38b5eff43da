from fitdoc.cli import main

main()
