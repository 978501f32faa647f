"""``python -m edge_fgic`` == ``edge-fgic``."""

from .cli import main

if __name__ == "__main__":
    main()
