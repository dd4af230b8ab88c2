"""vmnet_core: content-based video–music retrieval after VM-NET (Hong, Im, Yang, ICMR 2018).

Headless: this package never imports gradio, sqlalchemy, ``demo`` or ``study``.
"""

from vmnet_core.errors import VmnetError

__all__ = ["VmnetError"]
__version__ = "0.1.0"
