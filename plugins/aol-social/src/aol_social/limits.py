"""How platforms count a post's length: graphemes, bytes, and links counted as a fixed width.

Counted the way the platforms document it, so a post is refused at enqueue rather than by the
platform at publish time: Bluesky counts graphemes (what a reader sees as one character) and
UTF-8 bytes; Mastodon counts characters with every link as 23; X weighs characters (most
Latin-script ones 1, others such as CJK and emoji 2) with every link as 23.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

# regex (not re) for \X, the extended grapheme cluster of Unicode's segmentation rules; its
# stubs (types-regex) are a test extra, so the type check passes with or without them
import regex  # type: ignore[import-untyped, unused-ignore]

#: a link as the platforms recognise one, without trailing punctuation
_LINK = re.compile(r"https?://[^\s<>\"]+[^\s<>\".,;:!?)\]'}]")
_GRAPHEME = regex.compile(r"\X")
#: a cluster X counts as one emoji: pictographs, flags (regional indicators), keycaps
_EMOJI = regex.compile(r"[\p{Extended_Pictographic}\p{Regional_Indicator}\u20e3]")
LINK_WIDTH = 23
#: code point ranges X counts as weight 1 (twitter-text's default configuration)
_X_LIGHT = ((0x0000, 0x10FF), (0x2000, 0x200D), (0x2010, 0x201F), (0x2032, 0x2037))


@dataclass(frozen=True)
class Link:
    """A link's position: characters for display, UTF-8 bytes for Bluesky facets."""

    url: str
    start: int
    end: int
    byte_start: int
    byte_end: int


def links(text: str) -> list[Link]:
    found = []
    for match in _LINK.finditer(text):
        byte_start = len(text[: match.start()].encode())
        found.append(Link(match.group(), match.start(), match.end(), byte_start,
                          byte_start + len(match.group().encode())))
    return found


def graphemes(text: str) -> int:
    return len(_GRAPHEME.findall(text))


def utf8_bytes(text: str) -> int:
    return len(text.encode())


def _without_links(text: str) -> tuple[str, int]:
    """The text with its links cut out, and how many there were."""
    found = links(text)
    kept, last = [], 0
    for link in found:
        kept.append(text[last : link.start])
        last = link.end
    kept.append(text[last:])
    return "".join(kept), len(found)


def mastodon_length(text: str) -> int:
    rest, count = _without_links(text)
    return graphemes(rest) + LINK_WIDTH * count


def x_weighted_length(text: str) -> int:
    """twitter-text's count: the NFC text weighed per code point, except that an emoji
    (however many code points it joins) weighs 2 as one. A cluster a reader sees as one
    character (a Devanagari syllable) weighs each of its code points."""
    rest, count = _without_links(unicodedata.normalize("NFC", text))
    weight = 0
    for cluster in _GRAPHEME.findall(rest):
        if _EMOJI.search(cluster):
            weight += 2
        else:
            weight += sum(1 if _x_light(ord(c)) else 2 for c in cluster)
    return weight + LINK_WIDTH * count


def _x_light(code_point: int) -> bool:
    return any(lo <= code_point <= hi for lo, hi in _X_LIGHT)
