"""The checkout limits in the service's settings: defaults, overrides, refusals naming the variable."""
from __future__ import annotations

import pytest

from migration_safe.app.settings import MB, CheckoutLimits, settings_from_environment

from .test_settings import env, error_for, pem  # noqa: F401  (fixtures)


def test_defaults_and_overrides(env):
    assert settings_from_environment(env).checkout_limits == CheckoutLimits()
    env.update(MIGRATION_SAFE_MAX_FETCH_MB="7", MIGRATION_SAFE_MAX_FILES="900", MIGRATION_SAFE_MAX_MIRROR_MB="30")
    assert settings_from_environment(env).checkout_limits == CheckoutLimits(7 * MB, 900, 30 * MB)


@pytest.mark.parametrize("name", ["MIGRATION_SAFE_MAX_FETCH_MB", "MIGRATION_SAFE_MAX_FILES",
                                  "MIGRATION_SAFE_MAX_MIRROR_MB"])
@pytest.mark.parametrize("value", ["0", "-5", "1.5", "lots"])
def test_a_limit_that_is_not_a_positive_number_stops_start_up(env, name, value):
    env[name] = value
    assert name in error_for(env) and repr(value) in error_for(env)
