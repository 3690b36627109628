"""``python -m skrnn``: the command-line interface."""

from skrnn.cli import main

if __name__ == "__main__":
    main()
