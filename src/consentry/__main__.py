"""``python -m consentry`` runs the command line."""

from consentry.cli import main

main()
