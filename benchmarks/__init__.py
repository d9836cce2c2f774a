"""The throughput suite: lean_chat against the reference and a bare-ASGI floor, in one run, as ratios."""

__all__: list[str] = []
