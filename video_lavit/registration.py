"""Registration of every Video-LaVIT class with the transformers/diffusers Auto classes.

Each component adds one function below and lists it in ``register_all``; registration is idempotent
(``exist_ok=True``) so importing the package twice is harmless.
"""


def register_all():
    for register in _REGISTRATIONS:
        register()


_REGISTRATIONS = []
