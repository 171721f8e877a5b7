"""Response renderers beyond JSON."""

from __future__ import annotations

from typing import Any

from rest_framework.renderers import BaseRenderer, JSONRenderer


class YamlTextRenderer(BaseRenderer):
    """Renders a view's YAML text as is (the view builds the document)."""

    media_type = "application/yaml"
    format = "yaml"
    charset = "utf-8"

    def render(self, data: Any, accepted_media_type: str | None = None, renderer_context: Any = None) -> bytes:
        response = (renderer_context or {}).get("response")
        if response is not None and response.status_code >= 400:
            # Errors stay problem+json whatever was negotiated, so clients parse one error shape.
            return JSONRenderer().render(data)
        if isinstance(data, str):
            return data.encode("utf-8")
        import yaml

        return yaml.safe_dump(data, sort_keys=False, allow_unicode=True).encode("utf-8")
