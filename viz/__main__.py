"""`python -m viz` is the `viz` command."""
from viz.app.cli import main

if __name__ == "__main__":
    main()
