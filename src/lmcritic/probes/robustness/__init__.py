"""Robustness: CheckList INV/DIR/MFT tests, register shift and prompt injection (attacks and adversarial
input detection live beside them in ``attack*`` / ``detect*`` modules)."""
