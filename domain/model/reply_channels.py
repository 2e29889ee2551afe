"""Which channel answers a conversation whose own channel has no way back to the client.

A web form and the generic API channel bring messages in but cannot carry a reply:
their conversations are answered by e-mail. The delivery worker routes by this
table, and automatic replies use it to stay in the conversation they answer (a
form lead's welcome is sent by e-mail but belongs to the form's conversation).
"""

from __future__ import annotations

from types import MappingProxyType

REPLY_CHANNEL = MappingProxyType({"web": "email", "api": "email"})


def answers(conversation_channel: str, channel: str) -> bool:
    """Whether a message sent on `channel` is a reply within a `conversation_channel` thread."""
    return conversation_channel == channel or REPLY_CHANNEL.get(conversation_channel) == channel
