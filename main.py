"""Cloud Function entry point: the mutating admission webhook `mutate`."""

from injector.service.function import mutate

__all__ = ["mutate"]
