"""Label Studio label config -> LabelSchema, parsed with label-studio-sdk's LabelInterface."""

from __future__ import annotations

from dataclasses import dataclass

from label_studio_sdk.label_interface import LabelInterface
from label_studio_sdk.label_interface.control_tags import ChoicesTag

TEXT_TAGS = {"Text", "HyperText", "Paragraphs"}


class LabelConfigError(ValueError):
    """The config has no usable <Choices> over a <Text>, or several, or does not parse."""


@dataclass(frozen=True)
class LabelSchema:
    from_name: str  # the <Choices name=...>
    to_name: str  # the <Text name=...> it labels
    value_key: str  # task["data"][value_key] holds the text ("$text" -> "text")
    labels: tuple[str, ...]  # what results store: a Choice's alias if set, else its value
    multiple: bool  # choice="multiple"; single-choice projects work too (one label per text)

    def result(self, choices: list[str]) -> list[dict]:
        """A Label Studio result list for these choices (empty when none is predicted)."""
        if not choices:
            return []
        return [{"from_name": self.from_name, "to_name": self.to_name, "type": "choices", "value": {"choices": choices}}]

    def choices_of(self, result: list[dict]) -> list[str]:
        """The choices an annotation's result gives for this control ([] when it has none)."""
        out: list[str] = []
        for item in result or []:
            if isinstance(item, dict) and item.get("from_name") == self.from_name and item.get("type") == "choices":
                out.extend((item.get("value") or {}).get("choices") or [])
        return out


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
        raise LabelConfigError("label_config needs a <Choices> control whose toName is a <Text> tag")
    if len(candidates) > 1:
        names = ", ".join(t.name for t, _ in candidates)
        raise LabelConfigError(f"label_config has several <Choices> over text ({names}); exactly one is supported")
    tag, text = candidates[0]
    labels = tuple(tag.labels)
    if not labels:
        raise LabelConfigError(f"<Choices name={tag.name!r}> has no <Choice> values")
    if len(set(labels)) != len(labels):
        raise LabelConfigError(f"<Choices name={tag.name!r}> repeats a choice value")
    value = text.value or ""
    if not value.startswith("$") or len(value) < 2:
        raise LabelConfigError(f"<{text.tag} name={text.name!r}> needs value=\"$field\"")
    return LabelSchema(
        from_name=tag.name,
        to_name=text.name,
        value_key=value[1:],
        labels=labels,
        multiple=tag.attr.get("choice") == "multiple",
    )
