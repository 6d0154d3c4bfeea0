import os

from hypothesis import HealthCheck, settings

# Deterministic, deadline-free property tests: CI machines are shared and noisy, and a failure must
# reproduce. VIZ_HYPOTHESIS=thorough runs more examples locally.
settings.register_profile(
    "ci",
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    print_blob=True,
)
settings.register_profile("thorough", parent=settings.get_profile("ci"), max_examples=1000)
settings.load_profile(os.environ.get("VIZ_HYPOTHESIS", "ci"))
