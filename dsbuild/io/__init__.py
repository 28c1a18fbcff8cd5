"""Readers and writers for token-level annotated data (CoNLL, token JSONL)."""

from dsbuild.io.conll import read_conll, write_conll
from dsbuild.io.jsonl import read_jsonl, write_jsonl

__all__ = ["read_conll", "write_conll", "read_jsonl", "write_jsonl"]
