"""Subcommands of the `jaxres` CLI, one module each with `main(argv) -> int`."""
