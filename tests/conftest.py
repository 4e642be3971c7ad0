import pytest

from injector.core.config import InjectorConfig
from injector.core.engine import Injector


@pytest.fixture(scope="session")
def injector() -> Injector:
    """An injector on the embedded default configuration."""
    return Injector(InjectorConfig())
