"""Request parsers beyond JSON."""

from __future__ import annotations

from typing import Any

from rest_framework.exceptions import ParseError
from rest_framework.parsers import BaseParser


class YamlTextParser(BaseParser):
    """Hands the view the YAML body as text; the domain parses it and locates its problems."""

    media_type = "application/yaml"

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> str:
        try:
            return stream.read().decode("utf-8")
        except UnicodeDecodeError:
            raise ParseError("The body is not UTF-8 text.") from None


class LegacyYamlTextParser(YamlTextParser):
    media_type = "application/x-yaml"


class TextYamlParser(YamlTextParser):
    media_type = "text/yaml"


YAML_PARSERS = [YamlTextParser, LegacyYamlTextParser, TextYamlParser]
