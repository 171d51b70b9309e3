from fruitlab.commands import main

main()
