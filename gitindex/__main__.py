"""python -m gitindex"""

from gitindex.cli import main

main()
