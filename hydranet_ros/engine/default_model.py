"""Where the bundled default model lives inside the installed package."""
import os

ASSETS_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'assets')
DEFAULT_MODEL_PATH = os.path.join(ASSETS_DIR, 'default_model.pt')


def default_model_path() -> str:
    """Return the path of the bundled default model (trained on generated street scenes)."""
    return DEFAULT_MODEL_PATH
