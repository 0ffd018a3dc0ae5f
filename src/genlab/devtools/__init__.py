"""Developer tools that ship with genlab but no user needs: ``python -m genlab.devtools.mutate``."""
