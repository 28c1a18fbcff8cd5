"""LLM-teacher annotation (Kuzman & Ljubešić 2024): label schemas, prompts, answer parsing, splits,
agreement with human labels, confusion pictures, a stand-in baseline teacher and the student baseline.

The ``llm-annotate`` builder (``builders/llm_annotate.py``) puts these together; each module is
usable on its own::

    from dsbuild.annotate import load_schema, PromptTemplate, parse_answer, agreement
    schema = load_schema("iptc")                       # the 17 top-level IPTC Media Topics
    prompt = PromptTemplate.load("").render("Text of a news article", schema)
    parse_answer('{"topic": "Sport"}', schema).labels  # ('sport',)
"""

from dsbuild.annotate.parse import ParseResult, parse_answer
from dsbuild.annotate.prompt import PromptTemplate
from dsbuild.annotate.schema import Label, LabelSchema, SchemaError, load_schema

__all__ = ["Label", "LabelSchema", "ParseResult", "PromptTemplate", "SchemaError", "load_schema", "parse_answer"]
