from collections.abc import Iterator

import pytest
from processes import describe, mark_suite_run, survivors

from injector.core.config import InjectorConfig
from injector.core.engine import Injector


def pytest_configure(config: pytest.Config) -> None:
    mark_suite_run()


@pytest.fixture(scope="session", autouse=True)
def no_process_outlives_the_suite() -> Iterator[None]:
    """Fails the run if a process it started still runs once every test and fixture has ended.

    Set up before any other fixture, this one is torn down after all of them. The processes
    found are killed, so that a failure does not leave them running on the machine."""
    yield
    left = survivors()
    for process in left:
        process.kill()  # psutil checks that the pid still names the same process
    if left:
        pytest.fail(f"processes started by the suite outlived it: {describe(left)}")


@pytest.fixture(scope="session")
def injector() -> Injector:
    """An injector on the embedded default configuration."""
    return Injector(InjectorConfig())
