from modeltrace.cli import main

main()
