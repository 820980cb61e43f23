"""``python -m controller.cli`` runs slicectl (for environments without the console script)."""

from controller.cli import main

main()
