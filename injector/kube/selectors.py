"""Kubernetes label selectors (matchLabels and matchExpressions) and their matching."""

from typing import Annotated, Literal, Self

from pydantic import AfterValidator, Field, model_validator

from injector.kube.model import CamelModel
from injector.kube.names import check_label_value, check_qualified_name

LabelKey = Annotated[str, AfterValidator(check_qualified_name)]
LabelValue = Annotated[str, AfterValidator(check_label_value)]


class LabelSelectorRequirement(CamelModel):
    key: LabelKey
    operator: Literal["In", "NotIn", "Exists", "DoesNotExist"]
    values: tuple[LabelValue, ...] = ()

    @model_validator(mode="after")
    def _values_fit_operator(self) -> Self:
        needs_values = self.operator in ("In", "NotIn")
        if needs_values and not self.values:
            raise ValueError(f"operator {self.operator} needs at least one value")
        if not needs_values and self.values:
            raise ValueError(f"operator {self.operator} takes no values")
        return self

    def matches(self, labels: dict[str, str]) -> bool:
        match self.operator:
            case "In":
                return labels.get(self.key) in self.values
            case "NotIn":
                return labels.get(self.key) not in self.values
            case "Exists":
                return self.key in labels
            case _:
                return self.key not in labels


class LabelSelector(CamelModel):
    """Matches when every label and every expression matches; an empty selector matches all."""

    match_labels: dict[LabelKey, LabelValue] = Field(default_factory=dict)
    match_expressions: tuple[LabelSelectorRequirement, ...] = ()

    def matches(self, labels: dict[str, str]) -> bool:
        return all(labels.get(k) == v for k, v in self.match_labels.items()) and all(
            e.matches(labels) for e in self.match_expressions
        )
