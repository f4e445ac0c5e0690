"""Label Studio label config -> LabelSchema, parsed with label-studio-sdk's LabelInterface."""

from __future__ import annotations

from dataclasses import dataclass
from html.parser import HTMLParser
from typing import ClassVar

from label_studio_sdk.label_interface import LabelInterface
from label_studio_sdk.label_interface.control_tags import ChoicesTag

TEXT_TAGS = {"Text", "HyperText", "Paragraphs"}


class LabelConfigError(ValueError):
    """The config has no usable <Choices> over a <Text>, or several, or does not parse."""


def same_labels(labels, single_label: bool, other, other_single: bool) -> bool:
    """Two label sets (in any order: choices are matched by value) in the same choice mode."""
    return set(labels) == set(other) and len(labels) == len(other) and single_label == other_single


@dataclass(frozen=True)
class LabelSchema:
    from_name: str  # the <Choices name=...>
    to_name: str  # the <Text name=...> it labels
    value_key: str  # task["data"][value_key] holds the text ("$text" -> "text")
    labels: tuple[str, ...]  # what results store: a Choice's alias if set, else its value
    multiple: bool  # choice="multiple": multi-label; otherwise (single, single-radio) one label per text
    object_tag: str = "Text"  # Text, HyperText (tags stripped) or Paragraphs (joined "speaker: text" lines)
    name_key: str = "author"  # <Paragraphs nameKey>
    text_key: str = "text"  # <Paragraphs textKey>

    @property
    def single_label(self) -> bool:
        """Single-choice projects are single-label problems: softmax over the choices, exactly one predicted."""
        return not self.multiple

    def serves(self, labels, single_label: bool) -> bool:
        """Whether a model trained on ``labels`` (in any order) in this choice mode serves this config:
        choices are matched by value, so reordering <Choice> elements changes nothing."""
        return same_labels(labels, single_label, self.labels, self.single_label)

    def text_of(self, data) -> tuple[str | None, str | None]:
        """(the text the model reads, None) or (None, why this task has none)."""
        value = data.get(self.value_key) if isinstance(data, dict) else None
        if self.object_tag == "Paragraphs":
            text = _join_paragraphs(value, self.name_key, self.text_key)
        elif self.object_tag == "HyperText":
            text = strip_tags(value) if isinstance(value, str) else None
        else:
            text = value if isinstance(value, str) else None
        if text is None or not text.strip():
            return None, f"task has no text in data.{self.value_key}"
        return without_lone_surrogates(text), None

    def result(self, choices: list[str]) -> list[dict]:
        """A Label Studio result list for these choices (empty when none is predicted)."""
        if not choices:
            return []
        return [
            {"from_name": self.from_name, "to_name": self.to_name, "type": "choices", "value": {"choices": choices}}
        ]

    def choices_of(self, result: list[dict] | None) -> list[str]:
        """The choices an annotation's result gives for this control ([] when it has none)."""
        out: list[str] = []
        for item in result or []:
            if isinstance(item, dict) and item.get("from_name") == self.from_name and item.get("type") == "choices":
                out.extend((item.get("value") or {}).get("choices") or [])
        return out


def without_lone_surrogates(text: str) -> str:
    """``text`` with each lone UTF-16 surrogate (JSON allows ``"\\ud800"``; UTF-8 and the tokenizer do not)
    replaced by U+FFFD: such a task is scored like any other instead of failing its whole batch or round."""
    if text.isascii():  # the common case costs one scan
        return text
    return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def parse_label_config(config: str) -> LabelSchema:
    if not isinstance(config, str) or not config.strip():
        raise LabelConfigError("label_config is empty")
    try:
        interface = LabelInterface(config)
    except Exception as e:  # the SDK raises lxml / its own syntax errors
        raise LabelConfigError(f"label_config does not parse: {e}") from None
    candidates = []
    for tag in interface.find_tags_by_class(ChoicesTag):
        texts = [o for o in tag.objects if o.tag in TEXT_TAGS]
        if texts:
            candidates.append((tag, texts[0]))
    if not candidates:
        tags = ", ".join(f"<{t}>" for t in sorted(TEXT_TAGS))
        raise LabelConfigError(f"label_config needs a <Choices> control whose toName is one of {tags}")
    if len(candidates) > 1:
        names = ", ".join(t.name for t, _ in candidates)
        raise LabelConfigError(f"label_config has several <Choices> over text ({names}); exactly one is supported")
    tag, text = candidates[0]
    labels = tuple(tag.labels)
    if not labels:
        raise LabelConfigError(f"<Choices name={tag.name!r}> has no <Choice> values")
    if len(set(labels)) != len(labels):
        raise LabelConfigError(f"<Choices name={tag.name!r}> repeats a choice value")
    _refuse_lookalikes(tag.name, labels)
    value = text.value or ""
    if not value.startswith("$") or len(value) < 2:
        raise LabelConfigError(f'<{text.tag} name={text.name!r}> needs value="$field"')
    return LabelSchema(
        from_name=tag.name,
        to_name=text.name,
        value_key=value[1:],
        labels=labels,
        multiple=tag.attr.get("choice") == "multiple",
        object_tag=text.tag,
        name_key=text.attr.get("nameKey") or "author",
        text_key=text.attr.get("textKey") or "text",
    )


def _refuse_lookalikes(name: str, labels: tuple[str, ...]) -> None:
    """Values equal up to surrounding whitespace look like one label in Label Studio's UI but are stored
    as different strings: refuse them instead of training labels nobody can tell apart."""
    seen: dict[str, str] = {}
    for label in labels:
        key = label.strip()
        if not key:
            raise LabelConfigError(f"<Choices name={name!r}> has a blank choice value")
        if key in seen:
            raise LabelConfigError(
                f"<Choices name={name!r}>: choice values {seen[key]!r} and {label!r} "
                f"differ only in surrounding whitespace"
            )
        seen[key] = label


def _join_paragraphs(value, name_key: str, text_key: str) -> str | None:
    """A dialogue as one text: "speaker: text" per paragraph (the speaker is context the model can use)."""
    if not isinstance(value, list):
        return None
    lines = []
    for item in value:
        if not isinstance(item, dict) or not isinstance(item.get(text_key), str):
            continue
        speaker = item.get(name_key)
        lines.append(
            f"{speaker}: {item[text_key]}" if isinstance(speaker, (str, int)) and str(speaker) else item[text_key]
        )
    return "\n".join(lines)


class _TextOnly(HTMLParser):
    SKIP: ClassVar[frozenset[str]] = frozenset({"script", "style", "head", "template"})
    INLINE: ClassVar[frozenset[str]] = frozenset(
        {"a", "abbr", "b", "code", "em", "i", "mark", "q", "s", "small", "span", "strong", "sub", "sup", "u"}
    )

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skipping = 0

    def handle_starttag(self, tag, attrs):
        self._skipping += tag in self.SKIP
        self._break(tag)

    def handle_endtag(self, tag):
        self._skipping -= tag in self.SKIP and self._skipping > 0
        self._break(tag)

    def _break(self, tag):  # block elements separate words; inline ones do not ("<b>w</b>ord")
        if tag not in self.INLINE:
            self.parts.append(" ")

    def handle_data(self, data):
        if not self._skipping:
            self.parts.append(data)


def strip_tags(html: str) -> str:
    """The visible text of an HTML fragment (script and style contents dropped), whitespace collapsed."""
    parser = _TextOnly()
    parser.feed(html)
    parser.close()
    return " ".join("".join(parser.parts).split())
