"""Every failure the injector names: one root, one subclass per kind of failure.

Messages are written for the person who has to act on them: they name the field, annotation,
file or variable and say what was expected, and never quote a secret. The command line turns
an `InjectorError` into `error: <message>` on stderr and the class's `exit_code`.
"""

from pydantic import ValidationError


class InjectorError(Exception):
    """The root of every error the injector raises on purpose."""

    exit_code = 1


class ConfigError(InjectorError):
    """A configuration that cannot be used; the message names each field and its problem."""


class SourceError(InjectorError):
    """The environment names its sources wrongly; the message says which variable and why."""


class InvalidTokens(InjectorError):
    """URL tokens that are missing or not of the accepted form."""


class SecretUnavailable(InjectorError):
    """A Secret Manager version could not be read, or its payload failed its checksum."""


class InvalidReview(InjectorError):
    """The body is not an AdmissionReview request; the message says what is wrong."""


class MalformedPod(InjectorError):
    """The object under review is not a well-formed Pod; the message names the field."""


class InvalidAnnotation(InjectorError):
    """A value the Pod set under the prefix (an annotation, or the inject label) is invalid."""

    def __init__(self, key: str, value: str, problem: str, kind: str = "annotation"):
        super().__init__(f"{kind} {key}={value!r} is invalid: {problem}")


class InvalidStatus(InjectorError):
    """The status annotation is not the record the injector writes; says which part."""


class ManifestError(InjectorError):
    """Invalid manifest input; the message names the file, the document and the field."""


class InvalidArgument(InjectorError):
    """A command-line value the command cannot use; the message names the option."""


class InvalidCaBundle(InvalidArgument):
    """A CA bundle that is not only PEM certificates usable as trust anchors; says which part."""


class CertificateAuthorityError(InjectorError):
    """A development CA that cannot be reused; the message says why and what to do."""


class MissingDependency(InjectorError):
    """An optional package a command needs is not installed; the message says how to add it."""


def describe_validation_error(error: ValidationError) -> str:
    """One line naming each invalid field by its dotted location, and its problem."""
    problems = []
    for item in error.errors(include_url=False):
        location = ".".join(str(part) for part in item["loc"]) or "(top level)"
        message = item["msg"].removeprefix("Value error, ")
        problems.append(f"{location}: {message}")
    return "; ".join(problems)


def describe_value(value: object) -> str:
    """What a value is, in the words of a YAML or JSON user: "a mapping", "a list", "null"…"""
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    return "null" if value is None else type(value).__name__
