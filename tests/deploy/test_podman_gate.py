"""Without podman the container tests skip and say why; under CI=true they fail instead."""

from __future__ import annotations

import pytest

from tests.deploy.conftest import require_podman


def test_missing_podman_skips_with_its_reason_outside_ci():
    with pytest.raises(pytest.skip.Exception, match="podman is not installed"):
        require_podman("podman is not installed", ci=False)


def test_missing_podman_fails_under_ci():
    with pytest.raises(pytest.fail.Exception, match="podman is not installed; under CI=true the container tests must run"):
        require_podman("podman is not installed", ci=True)


def test_working_podman_neither_skips_nor_fails():
    assert require_podman(None, ci=True) is None
