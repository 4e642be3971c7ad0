"""The Terraform configuration in terraform/, parsed with python-hcl2, for the tests to inspect.

Strings come back without their quotes; an expression or a template comes back with its `${...}`,
e.g. `${var.region}` or `namespace.webhook.${local.annotation_prefix}`.
"""

import json
import re
import shutil
import subprocess
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hcl2

REPO = Path(__file__).resolve().parent.parent
TERRAFORM_DIR = REPO / "terraform"

_OPTIONS = hcl2.SerializationOptions(
    strip_string_quotes=True, explicit_blocks=False, with_comments=False
)

# References an expression can make, as (kind, regex); a resource is `<provider>_<type>.<name>`.
_REFERENCES = {
    "var": re.compile(r"\bvar\.([A-Za-z_][\w-]*)"),
    "local": re.compile(r"\blocal\.([A-Za-z_][\w-]*)"),
    "data": re.compile(r"\bdata\.([A-Za-z_]\w*)\.([A-Za-z_][\w-]*)"),
    "resource": re.compile(
        r"(?<![\w.])((?:google|kubernetes|archive|random)_\w+)\.([A-Za-z_][\w-]*)"
    ),
}
_WHOLE_REFERENCE = re.compile(r"^\$\{((?:var|local)\.[A-Za-z_][\w-]*)\}$")
_INNER_REFERENCE = re.compile(r"\$\{((?:var|local)\.[A-Za-z_][\w-]*)\}")


def strings_in(value: Any) -> Iterator[str]:
    """Every string value in a parsed structure (attribute values, not block labels)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from strings_in(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings_in(item)


def references_in(value: Any, kind: str) -> set[str]:
    """The names of one kind that a parsed value refers to: `var` gives {"region", ...}, `local`
    gives local names, `resource` and `data` give "type.name"."""
    found: set[str] = set()
    for text in strings_in(value):
        if "${" not in text:
            continue  # a plain literal refers to nothing
        for match in _REFERENCES[kind].finditer(text):
            found.add(".".join(match.groups()))
    return found


@dataclass(frozen=True)
class Terraform:
    files: dict[str, dict[str, Any]]  # file name -> parsed top-level blocks

    @classmethod
    def load(cls, directory: Path = TERRAFORM_DIR) -> "Terraform":
        files = {}
        for path in sorted(directory.glob("*.tf")):
            with path.open() as handle:
                files[path.name] = hcl2.load(handle, serialization_options=_OPTIONS)
        return cls(files)

    def _top_level(self, kind: str) -> Iterator[dict[str, Any]]:
        for parsed in self.files.values():
            yield from parsed.get(kind, [])

    def _labelled(self, kind: str) -> dict[str, dict[str, Any]]:
        """Blocks with two labels (resource, data) as {"type.name": body}."""
        blocks = {}
        for entry in self._top_level(kind):
            for type_name, named in entry.items():
                for name, body in named.items():
                    blocks[f"{type_name}.{name}"] = body
        return blocks

    @property
    def resources(self) -> dict[str, dict[str, Any]]:
        return self._labelled("resource")

    @property
    def data_sources(self) -> dict[str, dict[str, Any]]:
        return self._labelled("data")

    @property
    def variables(self) -> dict[str, dict[str, Any]]:
        return {name: body for entry in self._top_level("variable") for name, body in entry.items()}

    @property
    def outputs(self) -> dict[str, dict[str, Any]]:
        return {name: body for entry in self._top_level("output") for name, body in entry.items()}

    @property
    def locals(self) -> dict[str, Any]:
        return {name: value for entry in self._top_level("locals") for name, value in entry.items()}

    def resource(self, address: str) -> dict[str, Any]:
        return self.resources[address]

    def everything_but(self, kind: str) -> list[Any]:
        """All top-level blocks except those of one kind, e.g. to find where variables are used."""
        return [
            blocks for parsed in self.files.values() for k, blocks in parsed.items() if k != kind
        ]

    def resolve(self, value: Any, given: Mapping[str, Any]) -> Any:
        """A parsed value with its `${var.X}` and `${local.X}` references replaced.

        `given` supplies values by reference ("local.annotation_prefix": "injector.dev"); other
        locals resolve through their own definitions and variables through their defaults.
        Anything else, a function call for instance, stays as it is.
        """
        if isinstance(value, list):
            return [self.resolve(item, given) for item in value]
        if isinstance(value, Mapping):
            return {key: self.resolve(item, given) for key, item in value.items()}
        if not isinstance(value, str):
            return value
        whole = _WHOLE_REFERENCE.match(value)
        if whole:
            return self._reference(whole.group(1), given)
        return _INNER_REFERENCE.sub(lambda m: str(self._reference(m.group(1), given)), value)

    def _reference(self, reference: str, given: Mapping[str, Any]) -> Any:
        if reference in given:
            return given[reference]
        kind, name = reference.split(".", 1)
        if kind == "var" and "default" in self.variables.get(name, {}):
            return self.variables[name]["default"]
        if kind == "local" and name in self.locals:
            return self.resolve(self.locals[name], given)
        return f"${{{reference}}}"


def terraform_binary() -> str | None:
    return shutil.which("terraform")


def evaluate(
    tf_files: list[str], variables: Mapping[str, Any], expression: str, workdir: Path
) -> Any:
    """Evaluates an expression with `terraform console` over some of terraform/'s files.

    The files must need no provider: only variables and locals. Each variable they use is declared
    with `type = any` and given its value from `variables`.
    """
    terraform = terraform_binary()
    assert terraform is not None, "terraform is not on PATH"
    for name in tf_files:
        shutil.copy(TERRAFORM_DIR / name, workdir / name)
    stubs = "".join(f'variable "{name}" {{\n  type = any\n}}\n' for name in variables)
    (workdir / "variables.tf").write_text(stubs)
    (workdir / "values.tfvars.json").write_text(json.dumps(dict(variables)))
    result = subprocess.run(
        [terraform, "console", "-var-file=values.tfvars.json"],
        input=f"jsonencode({expression})\n",
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, f"terraform console failed:\n{result.stderr}"
    return json.loads(json.loads(result.stdout.strip()))


def function_source_files(terraform: Terraform) -> set[str]:
    """The files terraform/source.tf archives for the function, found the way Terraform's
    fileset does (paths relative to the repository)."""
    assert terraform.locals["repository_root"] == "${path.module}/.."
    expression = terraform.locals["function_source_files"]
    shape = re.fullmatch(r"\$\{setunion\(\[(?P<files>[^\]]*)\], (?P<filesets>.*)\)\}", expression)
    assert shape, (
        f"function_source_files is no longer setunion([files], fileset(...)): {expression}"
    )
    files = set(re.findall(r'"([^"]+)"', shape["files"]))
    patterns = re.findall(r'fileset\(local\.repository_root, "([^"]+)"\)', shape["filesets"])
    rebuilt = ", ".join(f'fileset(local.repository_root, "{pattern}")' for pattern in patterns)
    assert shape["filesets"] == rebuilt, f"unexpected include rule: {shape['filesets']}"
    for pattern in patterns:
        files |= {
            path.relative_to(REPO).as_posix() for path in REPO.glob(pattern) if path.is_file()
        }
    return files
