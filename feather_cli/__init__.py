"""The `feather` command line: compress, convert and inspect images on your own disk,
manage keys, and run the service. Image commands import no Flask."""
