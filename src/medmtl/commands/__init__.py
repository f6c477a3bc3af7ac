"""One module per `medmtl` subcommand: argument parsing and file I/O only, logic lives elsewhere."""
