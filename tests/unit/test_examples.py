"""What a round reads from Label Studio's tasks: newest annotation, counted skips, the pool."""

from __future__ import annotations

from beal_backend.labelstudio.client import Task
from beal_backend.labelstudio.label_config import parse_label_config
from beal_backend.worker.examples import collect_examples

CONFIG = (
    '<View><Text name="text" value="$body"/><Choices name="tags" toName="text" choice="multiple">'
    '<Choice value="a"/><Choice value="b"/></Choices></View>'
)


def ann(*choices, from_name="tags"):
    return {
        "result": [{"from_name": from_name, "to_name": "text", "type": "choices", "value": {"choices": list(choices)}}]
    }


def test_labeled_pool_and_skips():
    schema = parse_label_config(CONFIG)
    tasks = [
        Task(1, {"body": "first"}, [ann("b", "a")]),
        Task(2, {"body": "second"}, []),
        Task(3, {"body": "third"}, [ann("a", "zzz", "a")]),  # unknown label and a repeat
        Task(4, {"other": "no text field"}, [ann("a")]),
        Task(5, {"body": "   "}, []),
        Task(6, {"body": "sixth"}, [ann(from_name="something-else")]),  # no choice: left out, not a negative
        Task(7, {"body": "x" * 50}, []),
    ]
    ex = collect_examples(tasks, schema, max_chars=10)
    assert ex.task_ids == [1, 3]
    assert ex.texts == ["first", "third"]
    assert ex.label_sets == [["b", "a"], ["a"]]
    assert ex.pool_ids == [2, 7] and ex.pool_texts == ["second", "x" * 10]
    assert ex.skipped == {"annotation without a choice (empty result)": 1, "task without text": 2}
    assert ex.notes == {"tasks with choices not in the label config (those choices ignored)": 1}


def test_first_listed_annotation_wins():
    schema = parse_label_config(CONFIG)
    ex = collect_examples([Task(1, {"body": "t"}, [ann("b"), ann("a")])], schema, max_chars=100)
    assert ex.label_sets == [["b"]]


def test_the_fingerprint_changes_with_what_a_round_would_train_on():
    """Issue 23.3: a version records it; a restarted service compares it with Label Studio's tasks."""
    schema = parse_label_config(CONFIG)

    def fp(*tasks):
        return collect_examples(list(tasks), schema, max_chars=100).fingerprint()

    one, two = Task(1, {"body": "first"}, [ann("a")]), Task(2, {"body": "second"}, [ann("b")])
    base = fp(one, two)
    assert fp(two, one) == base  # the order Label Studio lists tasks in does not matter
    assert fp(one, two, Task(3, {"body": "third"}, [])) == base  # nor an unlabeled task
    assert fp(one, Task(2, {"body": "second"}, [ann("b", "a")])) != base  # an edited annotation
    assert fp(one, Task(2, {"body": "second!"}, [ann("b")])) != base  # an edited text
    assert fp(one, two, Task(3, {"body": "third"}, [ann("a")])) != base  # a new annotation
    assert fp(one) != base  # a deleted one
