"""Server-side benchmarks: `python -m bench.run [name]` (see bench/README.md)."""
