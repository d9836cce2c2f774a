"""The demo's example tool (`lean-chat serve --demo-tools`): a made-up forecast, the same for the same city."""

from __future__ import annotations

import zlib
from typing import Literal

__all__ = ["DEMO_TOOLS", "get_weather"]

_SKIES = ("sunny", "cloudy", "light rain", "windy", "foggy", "clear")


async def get_weather(city: str, unit: Literal["celsius", "fahrenheit"] = "celsius") -> dict[str, object]:
    """Today's weather in a city (made up for the demo: the same city always gets the same forecast)."""
    seed = zlib.crc32(city.strip().lower().encode("utf-8", "surrogatepass"))
    celsius = seed % 35 - 5
    temperature = celsius if unit == "celsius" else round(celsius * 9 / 5 + 32)
    return {"city": city, "temperature": temperature, "unit": unit, "sky": _SKIES[seed % len(_SKIES)]}


DEMO_TOOLS = (get_weather,)
