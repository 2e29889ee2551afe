"""Sanitising HTML bodies before they enter the log.

Mail and forms carry arbitrary HTML. What the log keeps for display is the
sanitised form (the raw MIME is kept by the channel as an attachment-style
blob when needed), so no reader of the log can be handed a script.
"""

from __future__ import annotations

import nh3

_ALLOWED_TAGS = {
    "a", "abbr", "b", "blockquote", "br", "code", "div", "em", "h1", "h2", "h3", "h4",
    "h5", "h6", "hr", "i", "img", "li", "ol", "p", "pre", "s", "span", "strong", "sub",
    "sup", "table", "tbody", "td", "th", "thead", "tr", "u", "ul",
}  # fmt: skip
_ALLOWED_ATTRIBUTES = {
    "a": {"href", "title"},
    "img": {"src", "alt", "width", "height"},
    "td": {"colspan", "rowspan"},
    "th": {"colspan", "rowspan"},
}


def sanitise_html(html: str) -> str:
    """Keep formatting, drop scripts, event handlers, styles and javascript: links."""
    if not html:
        return ""
    return nh3.clean(
        html,
        tags=_ALLOWED_TAGS,
        attributes=_ALLOWED_ATTRIBUTES,
        url_schemes={"http", "https", "mailto", "tel", "cid"},
        link_rel="noopener noreferrer nofollow",
    )


# Image sources that load nothing from elsewhere: parts of the message itself.
_LOCAL_SOURCES = ("cid:", "data:")


def block_remote_content(html: str) -> tuple[str, int]:
    """Sanitise, then drop every image source that would load from elsewhere.

    A remote image in a mail (a "tracking pixel") tells its sender when the message
    was read and from which address, so the inbox shows mail without them until the
    operator asks for them. The sanitiser already drops styles, `srcset`,
    `background`, `<video poster>` and every other way to name a resource, so what
    is left is `<img src>`; a relative source is dropped too, as it would load
    from this server. Returns the HTML and how many sources were dropped.
    """
    if not html:
        return "", 0
    blocked = 0

    def keep(element: str, attribute: str, value: str) -> str | None:
        nonlocal blocked
        remote = not value.strip().lower().startswith(_LOCAL_SOURCES)
        if element == "img" and attribute == "src" and remote:
            blocked += 1
            return None
        return value

    cleaned = nh3.clean(
        html,
        tags=_ALLOWED_TAGS,
        attributes=_ALLOWED_ATTRIBUTES,
        attribute_filter=keep,
        url_schemes={"http", "https", "mailto", "tel", "cid"},
        link_rel="noopener noreferrer nofollow",
    )
    return cleaned, blocked
