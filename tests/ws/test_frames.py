"""Frames ws builds itself are byte for byte what the websockets library builds."""

import pytest
from websockets.frames import Frame, Opcode

from ws.frames import outgoing


@pytest.mark.parametrize("size", [0, 125, 126, 65_535, 65_536, 200_000])
def test_text_frames_match_the_websockets_library(size: int) -> None:
    text = ("é" + "x" * size)[:size] if size else ""
    _, frame = outgoing(text)
    assert frame == Frame(Opcode.TEXT, text.encode()).serialize(mask=False)
