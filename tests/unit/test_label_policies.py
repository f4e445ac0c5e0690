"""Issue #15 items 2-5: label configs teams use and annotations as Label Studio stores them."""

from __future__ import annotations

import pytest

from beal_backend.labelstudio.client import Task
from beal_backend.labelstudio.label_config import (
    LabelConfigError,
    parse_label_config,
    strip_tags,
)
from beal_backend.worker import examples


def config(
    choices: str, obj: str = '<Text name="text" value="$text"/>', mode: str = "multiple", to: str = "text"
) -> str:
    return f'<View>{obj}<Choices name="label" toName="{to}" choice="{mode}">{choices}</Choices></View>'


AB = '<Choice value="a"/><Choice value="b"/>'


@pytest.mark.parametrize("values", [("a", " a"), ("a", "a "), ("x", "\ta\n", "a")])
def test_choices_differing_only_in_whitespace_are_a_setup_error(values):
    xml = config("".join(f'<Choice value="{v}"/>' for v in values))
    with pytest.raises(LabelConfigError, match="differ only in surrounding whitespace"):
        parse_label_config(xml)


def test_choices_over_an_unsupported_object_are_refused_naming_the_supported_tags():
    xml = config(AB, obj='<Image name="image" value="$image"/>', to="image")
    with pytest.raises(LabelConfigError, match="<HyperText>, <Paragraphs>, <Text>"):
        parse_label_config(xml)


def test_labels_are_matched_by_value_not_position():
    schema = parse_label_config(config(AB))
    assert schema.serves(["b", "a"], single_label=False)  # reordered <Choice> elements
    assert not schema.serves(["a", "b", "c"], single_label=False)  # a removed label
    assert not schema.serves(["a"], single_label=False)  # an added label
    assert not schema.serves(["a", "b"], single_label=True)  # single <-> multiple changed the model type


@pytest.mark.parametrize("mode, single", [("single", True), ("single-radio", True), ("multiple", False)])
def test_choice_mode(mode, single):
    assert parse_label_config(config(AB, mode=mode)).single_label is single


def test_choices_without_a_mode_are_single_label_like_label_studio_default():
    xml = '<View><Text name="text" value="$text"/><Choices name="label" toName="text">' + AB + "</Choices></View>"
    assert parse_label_config(xml).single_label


def test_paragraphs_are_joined_with_their_speakers():
    schema = parse_label_config(
        config(AB, '<Paragraphs name="d" value="$dialogue" layout="dialogue" nameKey="who"/>', to="d")
    )
    data = {"dialogue": [{"who": "Ann", "text": "Hi there"}, {"who": "Bob", "text": "Hello"}, {"text": "(silence)"}, 7]}
    assert schema.text_of(data) == ("Ann: Hi there\nBob: Hello\n(silence)", None)
    assert schema.text_of({"dialogue": "not a list"})[1] == "task has no text in data.dialogue"
    assert schema.text_of({"dialogue": [{"who": "Ann"}]})[1] == "task has no text in data.dialogue"


def test_hypertext_is_read_without_its_tags():
    schema = parse_label_config(config(AB, '<HyperText name="h" value="$html"/>', to="h"))
    html = "<div><p>Great <b>pro</b>duct&amp;fast</p><script>alert(1)</script><p>second</p></div>"
    assert schema.text_of({"html": html}) == ("Great product&fast second", None)
    assert schema.text_of({"html": "<p> </p>"})[1] == "task has no text in data.html"
    assert strip_tags("<style>p{}</style>a<br>b") == "a b"


def ann(choices, updated="2026-01-01T00:00:00Z", **extra):
    result = (
        []
        if choices is None
        else [{"from_name": "label", "to_name": "text", "type": "choices", "value": {"choices": choices}}]
    )
    return {"result": result, "updated_at": updated, **extra}


def collect(tasks, mode="multiple"):
    schema = parse_label_config(config(AB, mode=mode))
    return examples.collect_examples([Task(i, {"text": f"text {i}"}, a) for i, a in enumerate(tasks)], schema, 1000)


def test_tasks_without_a_usable_label_are_left_out_and_counted():
    ex = collect(
        [
            [ann(["a"])],  # 0: trained on
            [ann(None)],  # 1: empty result: not a negative example
            [ann(["zzz"])],  # 2: choice not in the config
            [ann(["a", "zzz"])],  # 3: known choice kept, the unknown one noted
            [],  # 4: pool
            [ann(["b"], was_cancelled=True)],  # 5: a skipped annotation is no label: still in the pool
        ]
    )
    assert ex.task_ids == [0, 3] and ex.label_sets == [["a"], ["a"]]
    assert ex.pool_ids == [4, 5]
    assert ex.skipped == {examples.NO_CHOICE: 1, examples.UNKNOWN_ONLY: 1}
    assert ex.notes == {examples.UNKNOWN_DROPPED: 1}


def test_ground_truth_wins_over_a_newer_annotation_and_conflicts_are_counted():
    ex = collect(
        [
            [ann(["b"], "2026-03-01T00:00:00Z"), ann(["a"], "2026-01-01T00:00:00Z", ground_truth=True)],
            [ann(["a"], "2026-01-01T00:00:00Z"), ann(["b"], "2026-02-01T00:00:00Z")],  # newest wins, in any list order
            [ann(["a"], "2026-01-01T00:00:00Z"), ann(["a"], "2026-02-01T00:00:00Z")],  # agree: no conflict
            [ann(["b"], "2026-05-01T00:00:00Z", was_cancelled=True), ann(["a"])],  # cancelled ones never count
        ]
    )
    assert ex.label_sets == [["a"], ["b"], ["a"], ["a"]]
    assert ex.notes == {examples.CONFLICT_GT: 1, examples.CONFLICT_NEWEST: 1}


def test_single_choice_annotation_with_two_choices_is_left_out():
    ex = collect([[ann(["a", "b"])], [ann(["b"])]], mode="single")
    assert ex.label_sets == [["b"]] and ex.skipped == {examples.SEVERAL_IN_SINGLE: 1}


def test_paragraph_tasks_become_examples():
    schema = parse_label_config(config(AB, '<Paragraphs name="d" value="$d"/>', to="d"))
    tasks = [
        Task(1, {"d": [{"author": "A", "text": "hey"}]}, [ann(["a"])]),
        Task(2, {"d": [{"author": "B", "text": "yo"}]}, []),
    ]
    ex = examples.collect_examples(tasks, schema, 1000)
    assert ex.texts == ["A: hey"] and ex.pool_texts == ["B: yo"] and not ex.skipped
