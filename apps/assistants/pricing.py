"""Cost of model usage, in US dollars per million tokens (input, output).

Prices of OpenAI's public models as published; models not listed (self-hosted, other
providers) cost 0 here. Add a model by adding a line; longest matching prefix wins, so dated
snapshots ("gpt-4o-mini-2024-07-18") use their family's price.
"""

from __future__ import annotations

from decimal import Decimal

PRICES_PER_MILLION: dict[str, tuple[Decimal, Decimal]] = {
    "gpt-4o-mini": (Decimal("0.15"), Decimal("0.60")),
    "gpt-4o": (Decimal("2.50"), Decimal("10.00")),
    "gpt-4.1-nano": (Decimal("0.10"), Decimal("0.40")),
    "gpt-4.1-mini": (Decimal("0.40"), Decimal("1.60")),
    "gpt-4.1": (Decimal("2.00"), Decimal("8.00")),
    "gpt-4-turbo": (Decimal("10.00"), Decimal("30.00")),
    "gpt-4": (Decimal("30.00"), Decimal("60.00")),
    "gpt-3.5-turbo": (Decimal("0.50"), Decimal("1.50")),
    "o3-mini": (Decimal("1.10"), Decimal("4.40")),
    "o4-mini": (Decimal("1.10"), Decimal("4.40")),
}
_MILLION = Decimal(1_000_000)
_MICRO = Decimal("0.000001")


def usage_cost(model: str, input_tokens: int, output_tokens: int) -> Decimal:
    matches = [prefix for prefix in PRICES_PER_MILLION if model.startswith(prefix)]
    if not matches:
        return Decimal(0).quantize(_MICRO)
    price_in, price_out = PRICES_PER_MILLION[max(matches, key=len)]
    # Rounded to the stored precision, so what a client is told is what is stored.
    return ((price_in * input_tokens + price_out * output_tokens) / _MILLION).quantize(_MICRO)
