"""Kubernetes resource quantities (`500m`, `2`, `128Mi`, `1e3`), parsed to exact decimals."""

import re
from decimal import Decimal

_QUANTITY = re.compile(
    r"^(?P<number>\+?(?:\d+\.?\d*|\.\d+))"
    r"(?P<suffix>Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E|[eE][+-]?\d+)?$"
)

_MULTIPLIERS = {
    "": Decimal(1),
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    "k": Decimal("1e3"),
    "M": Decimal("1e6"),
    "G": Decimal("1e9"),
    "T": Decimal("1e12"),
    "P": Decimal("1e15"),
    "E": Decimal("1e18"),
    "Ki": Decimal(2**10),
    "Mi": Decimal(2**20),
    "Gi": Decimal(2**30),
    "Ti": Decimal(2**40),
    "Pi": Decimal(2**50),
    "Ei": Decimal(2**60),
}

QUANTITY_FORM = "a non-negative Kubernetes quantity such as 100m, 2, 128Mi or 1Gi"


def parse_quantity(text: str) -> Decimal:
    """The value of a non-negative quantity; ValueError naming the expected form otherwise."""
    match = _QUANTITY.match(text)
    if match is None:
        raise ValueError(f"expected {QUANTITY_FORM}")
    suffix = match["suffix"] or ""
    if suffix[:1] in ("e", "E"):
        return Decimal(match["number"]) * Decimal(10) ** int(suffix[1:])
    return Decimal(match["number"]) * _MULTIPLIERS[suffix]
