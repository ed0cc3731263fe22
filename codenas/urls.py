"""URLs as users may see them: passwords masked before anything prints or logs them."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit


def is_server(uri: str) -> bool:
    """Whether ``uri`` names a tracking server (``http://``, ``https://``), not a local store."""
    return uri.startswith(("http://", "https://"))


def mask_url(url: str) -> str:
    """``url`` with any password replaced by ``***`` (database and http URLs alike)."""
    try:
        from sqlalchemy.engine import make_url

        parsed = make_url(url)
        if parsed.password is not None:
            return parsed.render_as_string(hide_password=True)
        return url
    except Exception:  # not a database URL
        parts = urlsplit(url)
        if parts.password is None:
            return url
        netloc = f"{parts.username}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
        return urlunsplit(parts._replace(netloc=netloc))
