"""Checks and the repr shared by the transforms."""


def _check_prob(value: float, name: str) -> float:
    """``value`` if it is in [0, 1], else a ValueError naming ``name``."""
    if not 0. <= value <= 1.:
        raise ValueError(f'{name} must be in [0, 1], but got {value}')
    return value


def _require_key(results: dict, key: str, transform: str, detail: str = ''):
    """``results[key]``, else a KeyError naming ``transform``, the keys of
    ``results`` and ``detail`` (e.g. the source file)."""
    if key not in results:
        raise KeyError(f"{transform} requires the key '{key}', but the "
                       f'results only have {sorted(results)}{detail}')
    return results[key]


def _format_repr(obj, *names: str) -> str:
    """``ClassName(name=value, ...)`` of the attributes ``names`` of
    ``obj``, strings quoted."""
    values = ((name, getattr(obj, name)) for name in names)
    args = ', '.join(f'{n}={v!r}' if isinstance(v, str) else f'{n}={v}'
                     for n, v in values)
    return f'{type(obj).__name__}({args})'
