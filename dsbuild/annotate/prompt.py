"""Prompt templates (Jinja) that turn one text and a label schema into the teacher's user message.

A template sees ``text`` (required: a template that never uses it is refused), ``labels`` (a list
of ``{name, definition, description, code, id}``), ``label_names``, ``multi_label``, ``language``
and ``schema_name``. The default, written for dsbuild, follows the structure Kuzman & Ljubešić
describe for their GPT-4o teacher: a task section, the labels with their definitions, an output
format section asking for a JSON object, then the text in single quotes after ``Text:``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
from jinja2 import meta
from jinja2.sandbox import SandboxedEnvironment

from dsbuild.annotate.schema import LabelSchema
from dsbuild.errors import ConfigError

DEFAULT_TEMPLATE = """\
### Task
Decide the topic of the news text below. The text is delimited by single quotes. Choose \
{% if multi_label %}every label that applies{% else %}exactly one label{% endif %} from the list \
of labels; always give {% if multi_label %}at least one label{% else %}a label{% endif %}, even \
when you are not sure.

### Labels
{% for label in labels %}
- {{ label.name }}: {{ label.definition }}{% if label.definition[-1:] not in ".!?" %}.{% endif %}{% if label.description %} {{ label.description }}{% endif %}

{% endfor %}

### Output format
Answer with a JSON object with one key, "topic", whose value is \
{% if multi_label %}a list of label names{% else %}one label name{% endif %}, written exactly as in \
the list above: {"topic": {% if multi_label %}["<label name>", ...]{% else %}"<label name>"{% endif %}}.

Text: '{{ text }}'
"""


class TemplateError(ConfigError):
    """A prompt template that cannot be used (names the template and what to fix)."""


@dataclass(frozen=True)
class PromptTemplate:
    """A checked Jinja template; ``render`` gives the user message for one text."""

    source: str
    origin: str = "default"

    @classmethod
    def load(cls, spec: str | Path = "") -> PromptTemplate:
        """The default template (``""``), or a template file (``.j2``, ``.jinja``, ``.txt``...)."""
        if not str(spec).strip():
            return cls.from_string(DEFAULT_TEMPLATE, origin="default")
        path = Path(spec).expanduser()
        if not path.is_file():
            raise TemplateError(f"prompt template {str(spec)!r}: no such file (give a Jinja template file that "
                                f"uses {{{{ text }}}}, or leave 'template' empty for the default)")
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as err:
            raise TemplateError(f"prompt template {path}: cannot read it ({err})") from None
        from dsbuild.builder import BuildContext

        return cls.from_string(text, origin=BuildContext.portable_path(path))

    @classmethod
    def from_string(cls, source: str, *, origin: str = "<string>") -> PromptTemplate:
        """Check that ``source`` parses and references ``text``."""
        env = _environment()
        try:
            ast = env.parse(source)
        except jinja2.TemplateSyntaxError as err:
            raise TemplateError(f"prompt template {origin}:{err.lineno}: Jinja syntax error: {err.message}") from None
        if "text" not in meta.find_undeclared_variables(ast):
            raise TemplateError(f"prompt template {origin}: it never uses {{{{ text }}}}, so the teacher would not "
                                f"see the text; add {{{{ text }}}} where the text goes")
        return cls(source, origin)

    def hash(self) -> str:
        """SHA-256 of the template source."""
        return hashlib.sha256(self.source.encode("utf-8")).hexdigest()

    def render(self, text: str, schema: LabelSchema, *, multi_label: bool = False, language: str = "") -> str:
        """The user message for ``text``."""
        labels = [{"name": lab.name, "definition": lab.definition, "description": lab.description,
                   "code": lab.code, "id": i} for i, lab in enumerate(schema.labels)]
        try:
            return _compiled(self.source).render(text=text, labels=labels, label_names=schema.names,
                                                 multi_label=multi_label, language=language,
                                                 schema_name=schema.name).strip() + "\n"
        except jinja2.TemplateError as err:  # an undefined variable, a sandbox violation
            raise TemplateError(f"prompt template {self.origin}: cannot render ({err}); it may use text, labels, "
                                f"label_names, multi_label, language and schema_name") from None


def prompt_hash(template: PromptTemplate, schema: LabelSchema, system_prompt: str = "") -> str:
    """What the card calls the prompt hash: template, schema (names, definitions) and system prompt."""
    blob = "\n\x00".join([template.hash(), schema.hash(), system_prompt])
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def _environment() -> SandboxedEnvironment:
    # sandboxed: a template from a config file must not reach Python internals
    return SandboxedEnvironment(undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
                                keep_trailing_newline=True, autoescape=False)


_CACHE: dict[str, jinja2.Template] = {}


def _compiled(source: str) -> Any:
    if source not in _CACHE:
        _CACHE[source] = _environment().from_string(source)
    return _CACHE[source]


__all__ = ["DEFAULT_TEMPLATE", "PromptTemplate", "TemplateError", "prompt_hash"]
