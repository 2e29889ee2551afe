"""Which channel modules exist: importing them registers their adapters in `ADAPTERS`."""

from __future__ import annotations

import importlib

from threadline.channels.base import ADAPTERS, ChannelAdapter

CHANNEL_MODULES = (
    "threadline.channels.email",
    "threadline.channels.telegram",
    "threadline.channels.twilio",
    "threadline.channels.webforms",
    "threadline.channels.sandbox",
)


def load_adapters() -> dict[str, type[ChannelAdapter]]:
    """Import every channel module once and return the adapters by channel name."""
    for module in CHANNEL_MODULES:
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as error:
            if error.name != module:  # a missing SDK is a real error; a missing module is not
                raise
    return dict(ADAPTERS)


def adapter_class(channel: str) -> type[ChannelAdapter] | None:
    return load_adapters().get(channel)


def serving(conversation_channel: str) -> list[type[ChannelAdapter]]:
    """The adapters whose inboxes carry conversations of this channel."""
    return [a for a in load_adapters().values() if conversation_channel in a.conversation_channels]
