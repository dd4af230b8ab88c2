"""The one exception type for errors a user can cause (bad file, missing stream, wrong bundle)."""


class VmnetError(Exception):
    """An error a person can act on; its message is one plain sentence, shown as-is in CLI and UI."""
