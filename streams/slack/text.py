"""Make text we did not write inert in Slack mrkdwn.

Slack's control sequences all start with ``<`` (``<!channel>``, ``<@U123>``, ``<#C1>``,
``<http://x|label>``), so escaping ``&``, ``<`` and ``>`` (Slack's own rule) disarms them. Bare
``@everyone``/``@here``/``@channel`` get a word joiner after the ``@`` so no client resolves them,
and messages are sent with ``verbatim`` text objects, so Slack does not auto-link either.
"""

from __future__ import annotations

import re

_BROADCAST_WORDS = re.compile(r"@(?=(?:everyone|here|channel)\b)", re.IGNORECASE)
_WORD_JOINER = "\u2060"


def escape(text: object) -> str:
    """Any value from an event, rendered as plain text that cannot ping anyone or forge a link."""
    escaped = str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _BROADCAST_WORDS.sub("@" + _WORD_JOINER, escaped)


def code(text: object) -> str:
    """Escaped text in a code span; a backtick inside would close the span, so it is replaced."""
    return "`" + escape(text).replace("`", "ʼ") + "`"
