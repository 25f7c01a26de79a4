import os

# Keras reads its backend once, at import: set it before any test imports keras.
os.environ.setdefault("KERAS_BACKEND", "torch")

from hypothesis import HealthCheck, settings  # noqa: E402

# Deterministic everywhere: the same examples on every run and every machine.
settings.register_profile(
    "axisdot",
    derandomize=True,
    deadline=None,
    max_examples=120,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "axisdot"))
