"""Maltese: etymology classification, Maltese-to-Arabic transliteration, processing pipelines."""
