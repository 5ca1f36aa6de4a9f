"""s2s: a compact attention encoder-decoder whose search explains itself.

    import s2s
    translator = s2s.load("checkpoints/en-fr")
    result = translator.translate("How are you?", strategy="beam", beam_size=5, nbest=3)
"""

from .translator import DecodeSettings, Translator, load

__all__ = ["DecodeSettings", "Translator", "load"]
