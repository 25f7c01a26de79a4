import os

# Keras reads its backend once, at import: set it before any test imports keras.
os.environ.setdefault("KERAS_BACKEND", "torch")

from hypothesis import settings  # noqa: E402

import axisdot.testing.plugin  # noqa: E402,F401 - registers the "axisdot-ci" profile

# Deterministic everywhere: axisdot's own suite runs on the profile its testing kit ships.
settings.register_profile("axisdot", parent=settings.get_profile("axisdot-ci"), max_examples=120)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "axisdot"))
