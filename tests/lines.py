"""Lines of text as the formats the injector reads and writes define them."""


def lines(text: str) -> list[str]:
    """The lines of text whose lines end at "\\n": JSON log lines, command output, iptables-save
    and iptables-restore rules, YAML. Unlike str.splitlines, it keeps U+0085, U+2028, U+2029 and
    the other characters Unicode calls line boundaries inside their line. A last line without
    its "\\n" is still a line; "" has none."""
    return text.removesuffix("\n").split("\n") if text else []
