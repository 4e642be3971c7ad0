"""Where the configuration and the URL tokens come from, as named by environment variables.

| variable                           | meaning                                                     |
|------------------------------------|-------------------------------------------------------------|
| INJECTOR_CONFIG_FILE               | a YAML or JSON configuration file                           |
| INJECTOR_CONFIG_SECRET             | a Secret Manager version holding the configuration          |
| INJECTOR_TOKENS                    | URL tokens, separated by commas or newlines                 |
| INJECTOR_TOKENS_SECRET             | a Secret Manager version holding the tokens, one a line     |
| INJECTOR_REFRESH_SECONDS           | how long a loaded configuration or token set is used (60)   |
| INJECTOR_ON_ERROR                  | deny (default) or allow: the answer when a review fails     |
| INJECTOR_SECRET_MANAGER_ENDPOINT   | another Secret Manager endpoint (anonymous credentials)     |

With neither config variable set, the embedded default configuration is used; with neither token
variable set, the webhook serves any path.
"""

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

from injector.core.config import InjectorConfig, parse_config
from injector.errors import ConfigError, InvalidTokens, SourceError
from injector.service.secret_manager import SecretReader, check_version_name

TOKEN = re.compile(r"^[A-Za-z0-9_-]{16,256}$")
TOKEN_FORM = "16 to 256 characters from A-Z, a-z, 0-9, '-' and '_'"


@dataclass(frozen=True)
class LoadedConfig:
    config: InjectorConfig
    source: str  # embedded, file or secret-manager
    version: str  # what was read: embedded, the file path, or the resolved secret version


class ConfigSource(Protocol):
    description: str

    def load(self) -> LoadedConfig: ...


class TokenSource(Protocol):
    description: str

    def load(self) -> tuple[str, ...]: ...


class EmbeddedConfig:
    description = "the embedded default configuration"

    def load(self) -> LoadedConfig:
        return LoadedConfig(InjectorConfig(), "embedded", "embedded")


@dataclass(frozen=True)
class FileConfig:
    path: Path

    @property
    def description(self) -> str:
        return f"the file {self.path}"

    def load(self) -> LoadedConfig:
        try:
            text = self.path.read_bytes()
        except OSError as error:
            message = f"the configuration {self.path} cannot be read: {error.strerror}"
            raise ConfigError(message) from None
        return LoadedConfig(_parse_config(text, str(self.path)), "file", str(self.path))


@dataclass(frozen=True)
class SecretConfig:
    version_name: str
    reader: SecretReader

    @property
    def description(self) -> str:
        return f"the secret version {self.version_name}"

    def load(self) -> LoadedConfig:
        payload = self.reader.read(self.version_name)
        config = _parse_config(payload.data, payload.version)
        return LoadedConfig(config, "secret-manager", payload.version)


def _parse_config(text: str | bytes, source: str) -> InjectorConfig:
    """The configuration in `text`; a ConfigError names `source` (a file, a secret version)."""
    try:
        return parse_config(text)
    except ConfigError as error:
        raise ConfigError(f"{source}: {error}") from None


def parse_tokens(text: str) -> tuple[str, ...]:
    """Tokens separated by commas or newlines; blank lines and lines starting with # are skipped.

    A line ends at "\\n" (a "\\r" before it is stripped with the other white space): Unicode's
    other line boundaries (U+0085, U+2028, U+2029…) are not separators, and a token holding
    one is refused like any other character outside the token alphabet."""
    tokens = tuple(
        item.strip()
        for line in text.split("\n")
        if not line.strip().startswith("#")
        for item in line.split(",")
        if item.strip()
    )
    if not tokens:
        raise InvalidTokens("no token is given")
    for position, token in enumerate(tokens, start=1):
        if not TOKEN.match(token):
            raise InvalidTokens(f"token {position} is not {TOKEN_FORM}")
    return tokens


@dataclass(frozen=True)
class StaticTokens:
    tokens: tuple[str, ...]
    description = "INJECTOR_TOKENS"

    def load(self) -> tuple[str, ...]:
        return self.tokens


@dataclass(frozen=True)
class SecretTokens:
    version_name: str
    reader: SecretReader

    @property
    def description(self) -> str:
        return f"the secret version {self.version_name}"

    def load(self) -> tuple[str, ...]:
        payload = self.reader.read(self.version_name)
        try:
            return parse_tokens(payload.data.decode("utf-8", errors="strict"))
        except UnicodeDecodeError:
            raise InvalidTokens("the token secret is not UTF-8 text") from None


@dataclass(frozen=True)
class Environment:
    config: ConfigSource
    tokens: TokenSource | None
    refresh_seconds: float
    on_error: Literal["deny", "allow"]


def _one_of(environ: Mapping[str, str], first: str, second: str) -> tuple[str, str] | None:
    given = [(name, environ[name]) for name in (first, second) if environ.get(name)]
    if len(given) > 1:
        raise SourceError(f"set only one of {first} and {second}")
    return given[0] if given else None


def _secret_name(variable: str, value: str) -> str:
    try:
        return check_version_name(value)
    except ValueError as error:
        raise SourceError(f"{variable}: {error}") from None


def environment(environ: Mapping[str, str]) -> Environment:
    reader = SecretReader(endpoint=environ.get("INJECTOR_SECRET_MANAGER_ENDPOINT") or None)

    config: ConfigSource = EmbeddedConfig()
    match _one_of(environ, "INJECTOR_CONFIG_FILE", "INJECTOR_CONFIG_SECRET"):
        case ("INJECTOR_CONFIG_FILE", path):
            config = FileConfig(Path(path))
        case (variable, name):
            config = SecretConfig(_secret_name(variable, name), reader)

    tokens: TokenSource | None = None
    match _one_of(environ, "INJECTOR_TOKENS", "INJECTOR_TOKENS_SECRET"):
        case ("INJECTOR_TOKENS", text):
            try:
                tokens = StaticTokens(parse_tokens(text))
            except InvalidTokens as error:
                raise SourceError(f"INJECTOR_TOKENS: {error}") from None
        case (variable, name):
            tokens = SecretTokens(_secret_name(variable, name), reader)

    refresh = environ.get("INJECTOR_REFRESH_SECONDS", "60")
    try:
        refresh_seconds = float(refresh)
    except ValueError:
        refresh_seconds = -1.0
    if not 1 <= refresh_seconds <= 86400:
        raise SourceError(f"INJECTOR_REFRESH_SECONDS: expected 1 to 86400 seconds, got {refresh!r}")

    on_error = environ.get("INJECTOR_ON_ERROR", "deny")
    if on_error not in ("deny", "allow"):
        raise SourceError(f"INJECTOR_ON_ERROR: expected deny or allow, got {on_error!r}")
    return Environment(config, tokens, refresh_seconds, on_error)


def config_for_tools(path: str | None, environ: Mapping[str, str]) -> InjectorConfig:
    """The configuration a command-line tool uses: --config FILE, else what the environment names.

    Raises an InjectorError (ConfigError, SourceError, SecretUnavailable) with a message for the
    user.
    """
    if path is not None:
        return FileConfig(Path(path)).load().config
    return environment(environ).config.load().config
