"""Make text we did not write inert in Slack mrkdwn, and fit text to Slack's limits.

Slack's control sequences all start with ``<`` (``<!channel>``, ``<@U123>``, ``<#C1>``,
``<http://x|label>``), so escaping ``&``, ``<`` and ``>`` (Slack's own rule) disarms them. Bare
``@everyone``/``@here``/``@channel`` get a word joiner after the ``@`` so no client resolves them,
and messages are sent with ``verbatim`` text objects, so Slack does not auto-link either.

Text is cut only after it is escaped (the limits count what Slack receives), and never inside an
entity (``&amp;``) or a ``<...>`` sequence: after escaping, every ``<`` in a text is one we wrote, so
a cut through one could break our link or leave half a control sequence for the next character.
"""

from __future__ import annotations

import hashlib
import re

_BROADCAST_WORDS = re.compile(r"@(?=(?:everyone|here|channel)\b)", re.IGNORECASE)
_WORD_JOINER = "\u2060"
ELLIPSIS = "…"
_ENTITY_MAX = len("&amp;")


def plain(text: object) -> str:
    """``str(text)``, for any value (no escaping)."""
    try:
        return str(text)
    except ValueError:  # ints past sys.get_int_max_str_digits() refuse str()
        if isinstance(text, int):
            return f"(an integer of {text.bit_length()} bits)"
        return f"(unprintable {type(text).__name__})"


def escape(text: object) -> str:
    """Any value from an event, rendered as plain text that cannot ping anyone or forge a link."""
    escaped = plain(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _BROADCAST_WORDS.sub("@" + _WORD_JOINER, escaped)


def code(text: object) -> str:
    """Escaped text in a code span; a backtick inside would close the span, so it is replaced."""
    return "`" + escape(text).replace("`", "ʼ") + "`"


def cut(mrkdwn: str, limit: int) -> str:
    """``mrkdwn`` (already escaped) in at most ``limit`` characters, ending with "…" when shortened.

    A code span left open by the cut is closed after the "…", so the rest of the message keeps its
    formatting.
    """
    if len(mrkdwn) <= limit:
        return mrkdwn
    end = max(limit - len(ELLIPSIS), 0)
    while True:
        end = _safe_end(mrkdwn, end)
        kept = mrkdwn[:end]
        tail = ELLIPSIS + ("`" if kept.count("`") % 2 else "")
        if len(kept) + len(tail) <= limit or end == 0:
            return (kept + tail)[:limit]
        end -= 1


def _safe_end(text: str, end: int) -> int:
    """The largest cut position <= ``end`` that is outside every entity and ``<...>`` sequence."""
    amp = text.rfind("&", max(end - _ENTITY_MAX + 1, 0), end)
    if amp != -1 and ";" not in text[amp:end]:
        end = amp
    opening = text.rfind("<", 0, end)
    if opening != -1 and ">" not in text[opening:end]:
        end = opening
    return end


def short_key(key: object, keep: int = 60) -> str:
    """A group key short enough for a log line, still telling long keys apart (a hash of the whole)."""
    text = plain(key)
    if len(text) <= keep:
        return text
    digest = hashlib.sha256(text.encode("utf-8", "replace")).hexdigest()[:10]
    return f"{text[:keep]}…#{digest}"
