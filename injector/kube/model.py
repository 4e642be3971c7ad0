"""The base of models read from Kubernetes-style YAML or JSON: camelCase keys, unknown keys
refused, frozen once validated."""

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel


class CamelModel(BaseModel):
    """Fields are snake_case in Python and camelCase in documents (`matchLabels`)."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, alias_generator=to_camel, populate_by_name=True
    )
