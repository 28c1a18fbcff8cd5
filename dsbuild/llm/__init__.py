"""LLM backends behind one interface (:class:`dsbuild.llm.base.LLM`), registered in
:data:`dsbuild.registry.llms`: ``openai`` (any OpenAI-compatible server over HTTP),
``transformers`` (a local causal LM) and ``vllm`` (offline vLLM engine)."""

from dsbuild.llm.base import LLM, Completion, Messages, Sampling, Usage, make_llm

__all__ = ["LLM", "Completion", "Messages", "Sampling", "Usage", "make_llm"]
