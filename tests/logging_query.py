"""Cloud Logging queries, as terraform/ writes them, evaluated against log entries in tests.

Only the subset terraform/ uses, and strictly: comparisons `[NOT ]FIELD OPERATOR VALUE` joined by
AND, where VALUE is a double-quoted string, or a severity name when FIELD is `severity`. Anything
else raises UnsupportedQuery, so a query outside the subset fails its test instead of being
misread. Semantics from the Logging query language
(https://cloud.google.com/logging/docs/view/logging-query-language): FIELD is a path into a
LogEntry in its JSON shape (`resource.labels.service_name`, `jsonPayload.message`); `=` is
equality and `!=` its negation; severities compare in LogSeverity order; a comparison on a field
the entry lacks is false, and NOT negates the comparison that follows it.
"""

import json
import operator
import re
from collections.abc import Callable, Mapping
from typing import Any

from google.logging.type.log_severity_pb2 import LogSeverity

_COMPARISON = re.compile(
    r"(?P<not>NOT\s+)?(?P<field>[A-Za-z_]\w*(?:\.\w+)*)\s*(?P<operator>>=|<=|!=|=|>|<)\s*"
    r'(?P<value>"(?:[^"\\]|\\.)*"|[A-Z]+)'
)
_AND = re.compile(r"\s+AND\s+")
_OPERATORS: dict[str, Callable[[Any, Any], bool]] = {
    "=": operator.eq,
    "!=": operator.ne,
    ">=": operator.ge,
    "<=": operator.le,
    ">": operator.gt,
    "<": operator.lt,
}


class UnsupportedQuery(ValueError):
    pass


def _field(entry: Mapping[str, Any], path: str) -> Any:
    value: Any = entry
    for name in path.split("."):
        if not isinstance(value, Mapping) or name not in value:
            return None
        value = value[name]
    return value


def _comparison(entry: Mapping[str, Any], match: re.Match[str]) -> bool:
    field, symbol, text = match["field"], match["operator"], match["value"]
    value = _field(entry, field)
    if field == "severity":
        if text.startswith('"'):
            text = json.loads(text)
        if text not in LogSeverity.DESCRIPTOR.values_by_name:
            raise UnsupportedQuery(f"{text} is not a LogSeverity")
        held = LogSeverity.Value(value) if value is not None else LogSeverity.DEFAULT
        result = _OPERATORS[symbol](held, LogSeverity.Value(text))
    elif not text.startswith('"') or symbol not in ("=", "!="):
        raise UnsupportedQuery(f"only = and != on quoted strings: {match[0]}")
    else:
        result = value is not None and _OPERATORS[symbol](str(value), json.loads(text))
    return not result if match["not"] else result


def selects(query: str, entry: Mapping[str, Any]) -> bool:
    """Whether the log entry (a LogEntry in its JSON shape) is one that the query selects."""
    results = []
    for term in _AND.split(query.strip()):
        match = _COMPARISON.fullmatch(term)
        if match is None:
            raise UnsupportedQuery(f"not a comparison of the supported subset: {term!r}")
        results.append(_comparison(entry, match))
    return all(results)
