from fruitlab.cli import main

main()
