"""``python -m dsbuild``: the same command line as the ``dsbuild`` console script."""

from dsbuild.cli import main

if __name__ == "__main__":
    main()
