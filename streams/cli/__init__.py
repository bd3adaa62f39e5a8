"""The ``promise-ledger`` command: one module per subcommand, wired together in ``main``."""
