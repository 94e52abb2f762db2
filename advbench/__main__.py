from advbench.cli import main

main()
