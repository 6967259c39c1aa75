"""svd_mm's test suite; :mod:`tests.helpers` holds its data builders and
helpers (also used by ``tools/demo.py`` and ``benchmarks/``)."""
