"""bff.label_selectors: label key/value validation and selector parsing, in apimachinery's words."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bff.label_selectors import (
    SelectorError,
    label_key_errors,
    label_value_errors,
    parse_selector,
)

KEY_REGEX_MSG = (
    "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
    "alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for "
    "validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
)
VALUE_REGEX_MSG = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or "
    "'.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or "
    "'my_value',  or '12345', regex used for validation is "
    "'(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
)


@pytest.mark.parametrize(
    ("key", "errors"),
    [
        ("harvesterhci.io/read-message", []),
        ("a", []),
        ("A.b_c-d", []),
        ("x" * 63, []),
        ("x" * 64, ["name part must be no more than 63 bytes"]),
        ("", ["name part must be non-empty", "name part " + KEY_REGEX_MSG]),
        ("-a", ["name part " + KEY_REGEX_MSG]),
        ("/a", ["prefix part must be non-empty"]),
        ("a/", ["name part must be non-empty", "name part " + KEY_REGEX_MSG]),
        (
            "Example.com/a",
            [
                "prefix part a lowercase RFC 1123 subdomain must consist of lower case "
                "alphanumeric characters, '-' or '.', and must start and end with an "
                "alphanumeric character (e.g. 'example.com', regex used for validation is "
                "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
            ],
        ),
        (
            "a/b/c",
            [
                "a valid label key " + KEY_REGEX_MSG + " with an optional DNS subdomain prefix "
                "and '/' (e.g. 'example.com/MyName')"
            ],
        ),
        ("a\n", ["name part " + KEY_REGEX_MSG]),
    ],
)
def test_label_key_errors_table(key: str, errors: list[str]) -> None:
    assert label_key_errors(key) == errors


@pytest.mark.parametrize(
    ("value", "errors"),
    [
        ("", []),
        ("true", []),
        ("v1.5.0", []),
        ("a" * 63, []),
        ("a" * 64, ["must be no more than 63 bytes"]),
        ("-x", [VALUE_REGEX_MSG]),
        ("x y", [VALUE_REGEX_MSG]),
        ("é", [VALUE_REGEX_MSG]),
    ],
)
def test_label_value_errors_table(value: str, errors: list[str]) -> None:
    assert label_value_errors(value) == errors


_ALNUM = st.sampled_from("abcXYZ019")
_VALID_VALUE = st.one_of(
    st.just(""),
    st.builds(
        lambda a, mid, b: a + mid + b,
        _ALNUM,
        st.text(alphabet="abc-_.XYZ019", max_size=61),
        _ALNUM,
    ),
    _ALNUM,
)


@given(_VALID_VALUE)
def test_generated_valid_values_pass(value: str) -> None:
    assert label_value_errors(value) == []


@given(st.text(max_size=80))
def test_any_value_is_either_valid_or_explained(value: str) -> None:
    errors = label_value_errors(value)
    ok = len(value.encode()) <= 63 and (
        value == "" or (value[0].isascii() and value[0].isalnum() and value[-1].isascii()
                        and value[-1].isalnum()
                        and all(c.isascii() and (c.isalnum() or c in "-_.") for c in value))
    )  # fmt: skip
    assert (errors == []) == ok


# --- selectors -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "labels", "matches"),
    [
        ("", {}, True),
        ("", {"a": "b"}, True),
        ("a=b", {"a": "b"}, True),
        ("a==b", {"a": "b"}, True),
        ("a=b", {"a": "c"}, False),
        ("a!=b", {}, True),
        ("a!=b", {"a": "b"}, False),
        ("a in (b, c)", {"a": "c"}, True),
        ("a in (b,c)", {}, False),
        ("a notin (b,c)", {}, True),
        ("a notin (b,c)", {"a": "b"}, False),
        ("a", {"a": ""}, True),
        ("!a", {"a": ""}, False),
        ("!a", {}, True),
        ("a,b=c", {"a": "x", "b": "c"}, True),
        ("a,b=c", {"b": "c"}, False),
        ("a=", {"a": ""}, True),
        ("n>3", {"n": "4"}, True),
        ("n<3", {"n": "4"}, False),
        ("n>3", {"n": "x"}, False),
        (
            "harvesterhci.io/upgradeState in (Succeeded,Failed),!harvesterhci.io/read-message",
            {"harvesterhci.io/upgradeState": "Failed"},
            True,
        ),
        ("  a = b  ", {"a": "b"}, True),
    ],
)
def test_selector_matching_table(text: str, labels: dict[str, str], matches: bool) -> None:
    assert parse_selector(text).matches(labels) is matches


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a=(", "found '(', expected: identifier"),
        ("a b", "unable to parse requirement: found 'b', expected: in, notin, =, ==, !=, gt, lt"),
        ("a=b c", "found 'c', expected: ',' or 'end of string'"),
        ("a,", "found '', expected: identifier after ','"),
        (",", "found ',', expected: !, identifier, or 'end of string'"),
        ("a in b", "unable to parse requirement: found 'b' expected: '('"),
        ("a x b", "unable to parse requirement: found 'x', expected: in, notin, =, ==, !=, gt, lt"),
        ("a==", None),
        ("a=b=c", "found '=', expected: ',' or 'end of string'"),
        ("!a=b", "found '=', expected: ',' or 'end of string'"),
        (
            "-a=b",
            f'unable to parse requirement: <nil>: Invalid value: "-a": name part {KEY_REGEX_MSG}',
        ),
        (
            "a=-b",
            f'unable to parse requirement: values[0][a]: Invalid value: "-b": {VALUE_REGEX_MSG}',
        ),
        ("a=!", "unable to parse requirement: found '!', expected: identifier"),
    ],
)
def test_selector_errors_table(text: str, message: str | None) -> None:
    if message is None:
        assert parse_selector(text).matches({"a": ""})
        return
    with pytest.raises(SelectorError) as info:
        parse_selector(text)
    assert message in str(info.value)


_KEYS = st.sampled_from(["a", "b", "example.com/c", "harvesterhci.io/upgradeState"])
_VALUES = st.sampled_from(["", "x", "Succeeded", "true", "1"])


@given(st.dictionaries(_KEYS, _VALUES), _KEYS, _VALUES)
def test_equality_and_inequality_are_complements(
    labels: dict[str, str], key: str, value: str
) -> None:
    if not value:
        return
    eq = parse_selector(f"{key}={value}").matches(labels)
    ne = parse_selector(f"{key}!={value}").matches(labels)
    assert eq != ne
    assert eq == (labels.get(key) == value)


@given(st.dictionaries(_KEYS, _VALUES), st.lists(_KEYS, min_size=1, max_size=3))
def test_a_comma_list_is_a_conjunction(labels: dict[str, str], keys: list[str]) -> None:
    combined = parse_selector(",".join(keys)).matches(labels)
    assert combined == all(parse_selector(k).matches(labels) for k in keys)
    assert parse_selector(",".join("!" + k for k in keys)).matches(labels) == all(
        k not in labels for k in keys
    )
