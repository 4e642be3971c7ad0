import pytest

from injector.config import InjectorConfig
from injector.engine import Injector


@pytest.fixture(scope="session")
def injector() -> Injector:
    """An injector on the embedded default configuration."""
    return Injector(InjectorConfig())
