"""One check for every number an option object takes: finite, of the right kind, within its range.

A comparison such as `start < 0` is false for NaN, so a NaN slips past every check written that way, and
`1e308` seconds or frames per second reaches the sampler as if it were a setting. `check_number` refuses
both, and says in one shape what the field takes:

    >>> check_number("fps", float("nan"), above=0, most=1000)
    Traceback (most recent call last):
    OptionsError: fps must be a number above 0 and at most 1000, got nan.
"""

from __future__ import annotations

import math
import numbers

from .errors import OptionsError


def check_number(
    name: str,
    value: object,
    *,
    least: float | None = None,
    above: float | None = None,
    most: float | None = None,
    whole: bool = False,
    hint: str = "",
) -> None:
    """Raise OptionsError naming the field `name` unless `value` is a finite number in range.

    `least` and `most` are inclusive bounds, `above` an exclusive lower one; `whole` asks for an integer
    (True and False are not numbers here). `hint` is added to the message.
    """
    if _fits(value, least, above, most, whole):
        return
    kind = "a whole number" if whole else "a number"
    bounds = [
        *([f"at least {least:g}"] if least is not None else []),
        *([f"above {above:g}"] if above is not None else []),
        *([f"at most {most:g}"] if most is not None else []),
    ]
    wanted = f"{kind} {' and '.join(bounds)}" if bounds else f"a finite {kind.removeprefix('a ')}"
    raise OptionsError(f"{name} must be {wanted}, got {value!r}.{' ' + hint if hint else ''}", name)


def _fits(value: object, least: float | None, above: float | None, most: float | None, whole: bool) -> bool:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return False
    if whole and not isinstance(value, numbers.Integral):
        return False
    if not math.isfinite(value):
        return False
    return (
        (least is None or value >= least)
        and (above is None or value > above)
        and (most is None or value <= most)
    )


def whole_number(name: str, value: object) -> int:
    """`value` as an int where it is a finite whole number (2.0 from a slider is 2), else OptionsError.

    For front ends whose controls give floats for whole-number fields.
    """
    real = isinstance(value, numbers.Real) and not isinstance(value, bool)
    if real and math.isfinite(value) and float(value).is_integer():  # type: ignore[arg-type]
        return int(value)  # type: ignore[arg-type]
    raise OptionsError(f"{name} must be a whole number, got {value!r}.", name)
