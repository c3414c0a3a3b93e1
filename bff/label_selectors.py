"""Kubernetes label rules: key and value syntax, DNS-1123 names, and label selectors.

The BFF parses ``labelSelector`` and the read cache matches it, so both must refuse and
select exactly what a real API server does, with the same words. This mirrors apimachinery:

- ``content.IsLabelKey`` / ``content.IsLabelValue`` (formerly ``validation.IsQualifiedName``
  and ``IsValidLabelValue``) for keys and values;
- ``validation.IsDNS1123Subdomain`` / ``IsDNS1123Label`` for label key prefixes and the
  names :mod:`bff.names` checks;
- ``labels.Parse`` for selectors (equality, set-based, existence and ``>``/``<``).

The emulator's own object validation (``ObjectMeta``, in :mod:`bff.sandbox.objectmeta`)
uses these rules but lives with the emulator.

Lengths are counted in bytes of UTF-8, as Go's ``len`` does.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum

__all__ = [
    "Operator",
    "Requirement",
    "Selector",
    "SelectorError",
    "label_key_errors",
    "label_value_errors",
    "parse_selector",
]

_KEY_FMT = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
_KEY_MSG = (
    "must consist of alphanumeric characters, '-', '_' or '.', "
    "and must start and end with an alphanumeric character"
)
_KEY_MAX = 63
_VALUE_FMT = f"({_KEY_FMT})?"
_VALUE_MSG = (
    "a valid label must be an empty string or consist of alphanumeric characters, "
    "'-', '_' or '.', and must start and end with an alphanumeric character"
)
_VALUE_MAX = 63
_DNS1123_LABEL_FMT = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS1123_SUBDOMAIN_FMT = _DNS1123_LABEL_FMT + "(\\." + _DNS1123_LABEL_FMT + ")*"
_DNS1123_SUBDOMAIN_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, "
    "'-' or '.', and must start and end with an alphanumeric character"
)
_DNS1123_SUBDOMAIN_MAX = 253

_KEY_RE = re.compile(_KEY_FMT)
_VALUE_RE = re.compile(_VALUE_FMT)
_DNS1123_SUBDOMAIN_RE = re.compile(_DNS1123_SUBDOMAIN_FMT)


def _blen(value: str) -> int:
    return len(value.encode("utf-8", "surrogatepass"))


def _regex_error(msg: str, fmt: str, *examples: str) -> str:
    if not examples:
        return f"{msg} (regex used for validation is '{fmt}')"
    shown = " or ".join(f"'{e}', " for e in examples)
    return f"{msg} (e.g. {shown}regex used for validation is '{fmt}')"


def _max_len_error(length: int) -> str:
    return f"must be no more than {length} bytes"


def dns1123_subdomain_errors(value: str) -> list[str]:
    """``validation.IsDNS1123Subdomain``: object names, label key prefixes."""
    errs: list[str] = []
    if _blen(value) > _DNS1123_SUBDOMAIN_MAX:
        errs.append(_max_len_error(_DNS1123_SUBDOMAIN_MAX))
    if not _DNS1123_SUBDOMAIN_RE.fullmatch(value):
        errs.append(_regex_error(_DNS1123_SUBDOMAIN_MSG, _DNS1123_SUBDOMAIN_FMT, "example.com"))
    return errs


_DNS1123_LABEL_MSG = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', "
    "and must start and end with an alphanumeric character"
)
_DNS1123_LABEL_RE = re.compile(_DNS1123_LABEL_FMT)


def dns1123_label_errors(value: str) -> list[str]:
    """``validation.IsDNS1123Label``: namespace names."""
    errs: list[str] = []
    if _blen(value) > 63:
        errs.append(_max_len_error(63))
    if not _DNS1123_LABEL_RE.fullmatch(value):
        if _DNS1123_SUBDOMAIN_RE.fullmatch(value):
            errs.append("must not contain dots")
        else:
            errs.append(_regex_error(_DNS1123_LABEL_MSG, _DNS1123_LABEL_FMT, "my-name", "123-abc"))
    return errs


def label_key_errors(key: str) -> list[str]:
    """The messages ``content.IsLabelKey`` returns for ``key`` (empty when valid)."""
    errs: list[str] = []
    parts = key.split("/")
    if len(parts) == 1:
        name = parts[0]
    elif len(parts) == 2:
        prefix, name = parts
        if not prefix:
            errs.append("prefix part must be non-empty")
        else:
            errs.extend("prefix part " + m for m in dns1123_subdomain_errors(prefix))
    else:
        return [
            "a valid label key "
            + _regex_error(_KEY_MSG, _KEY_FMT, "MyName", "my.name", "123-abc")
            + " with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
        ]
    if not name:
        errs.append("name part must be non-empty")
    elif _blen(name) > _KEY_MAX:
        errs.append("name part " + _max_len_error(_KEY_MAX))
    if not _KEY_RE.fullmatch(name):
        errs.append("name part " + _regex_error(_KEY_MSG, _KEY_FMT, "MyName", "my.name", "123-abc"))
    return errs


def label_value_errors(value: str) -> list[str]:
    """The messages ``content.IsLabelValue`` returns for ``value`` (empty when valid)."""
    errs: list[str] = []
    if _blen(value) > _VALUE_MAX:
        errs.append(_max_len_error(_VALUE_MAX))
    if not _VALUE_RE.fullmatch(value):
        errs.append(_regex_error(_VALUE_MSG, _VALUE_FMT, "MyValue", "my_value", "12345"))
    return errs


def go_quote(value: str) -> str:
    """Go's ``%q`` for the strings that appear in validation messages."""
    out = ['"']
    for ch in value:
        code = ord(ch)
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\r":
            out.append("\\r")
        elif code < 0x20 or code == 0x7F:
            out.append(f"\\x{code:02x}")
        elif 0xD800 <= code <= 0xDFFF:
            out.append("\\ufffd")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


# --- selectors -------------------------------------------------------------------------


class SelectorError(ValueError):
    """A label selector that ``labels.Parse`` would refuse; the text is its message."""


class Operator(Enum):
    EQUALS = "="
    DOUBLE_EQUALS = "=="
    NOT_EQUALS = "!="
    IN = "in"
    NOT_IN = "notin"
    EXISTS = "exists"
    DOES_NOT_EXIST = "!"
    GREATER_THAN = "gt"
    LESS_THAN = "lt"


@dataclass(frozen=True)
class Requirement:
    key: str
    operator: Operator
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        op = self.operator
        has = self.key in labels
        if op in (Operator.EQUALS, Operator.DOUBLE_EQUALS, Operator.IN):
            return has and labels[self.key] in self.values
        if op in (Operator.NOT_EQUALS, Operator.NOT_IN):
            return not has or labels[self.key] not in self.values
        if op is Operator.EXISTS:
            return has
        if op is Operator.DOES_NOT_EXIST:
            return not has
        # Gt / Lt: both sides must be base-10 int64, as strconv.ParseInt demands.
        if not has or len(self.values) != 1:
            return False
        left = _parse_int64(labels[self.key])
        right = _parse_int64(self.values[0])
        if left is None or right is None:
            return False
        return left > right if op is Operator.GREATER_THAN else left < right


@dataclass(frozen=True)
class Selector:
    requirements: tuple[Requirement, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        return all(r.matches(labels) for r in self.requirements)

    @property
    def empty(self) -> bool:
        return not self.requirements


_INT64_RE = re.compile(r"[+-]?[0-9]+")


def _parse_int64(text: str) -> int | None:
    if not _INT64_RE.fullmatch(text):
        return None
    value = int(text)
    if not -(2**63) <= value < 2**63:
        return None
    return value


# Tokens, as in apimachinery/pkg/labels/selector.go.
_ERROR, _EOS, _CLOSE, _COMMA, _NOT, _DEQ, _EQ, _GT, _ID, _IN, _LT, _NEQ, _NOTIN, _OPEN = range(14)
_STRING_TO_TOKEN = {
    ")": _CLOSE,
    ",": _COMMA,
    "!": _NOT,
    "==": _DEQ,
    "=": _EQ,
    ">": _GT,
    "in": _IN,
    "<": _LT,
    "!=": _NEQ,
    "notin": _NOTIN,
    "(": _OPEN,
}
_SPECIAL = set("=!(),><")
_WHITESPACE = set(" \t\r\n")
_BINARY_OPERATORS = ["in", "notin", "=", "==", "!=", "gt", "lt"]


def _lex(text: str) -> list[tuple[int, str]]:
    """Split ``text`` into (token, literal) pairs, ending with end-of-string."""
    data = text.encode("utf-8", "surrogatepass")
    pos = 0
    items: list[tuple[int, str]] = []

    def decode(raw: bytes) -> str:
        return raw.decode("utf-8", "replace")

    while True:
        while pos < len(data) and chr(data[pos]) in _WHITESPACE:
            pos += 1
        if pos >= len(data) or data[pos] == 0:
            items.append((_EOS, ""))
            return items
        ch = chr(data[pos])
        if ch in _SPECIAL:
            buf = ""
            last: tuple[int, str] | None = None
            while pos < len(data) and data[pos] != 0 and chr(data[pos]) in _SPECIAL:
                buf += chr(data[pos])
                pos += 1
                if buf in _STRING_TO_TOKEN:
                    last = (_STRING_TO_TOKEN[buf], buf)
                elif last is not None:
                    pos -= 1
                    break
            if last is None:
                items.append((_ERROR, f"error expected: keyword found '{buf}'"))
            else:
                items.append(last)
        else:
            start = pos
            while pos < len(data) and data[pos] != 0:
                c = chr(data[pos])
                if c in _SPECIAL or c in _WHITESPACE:
                    break
                pos += 1
            word = decode(data[start:pos])
            items.append((_STRING_TO_TOKEN.get(word, _ID), word))


class _Parser:
    def __init__(self, text: str) -> None:
        self.items = _lex(text)
        self.pos = 0

    def lookahead(self, values: bool = True) -> tuple[int, str]:
        tok, lit = self.items[self.pos]
        if values and tok in (_IN, _NOTIN):
            tok = _ID
        return tok, lit

    def consume(self, values: bool = True) -> tuple[int, str]:
        tok, lit = self.lookahead(values)
        if self.pos < len(self.items) - 1:
            self.pos += 1
        return tok, lit

    def parse(self) -> list[Requirement]:
        reqs: list[Requirement] = []
        while True:
            tok, lit = self.lookahead()
            if tok in (_ID, _NOT):
                try:
                    reqs.append(self.requirement())
                except SelectorError as exc:
                    raise SelectorError(f"unable to parse requirement: {exc}") from None
                t, lit2 = self.consume()
                if t == _EOS:
                    return reqs
                if t == _COMMA:
                    t2, l2 = self.lookahead()
                    if t2 not in (_ID, _NOT):
                        raise SelectorError(f"found '{l2}', expected: identifier after ','")
                else:
                    raise SelectorError(f"found '{lit2}', expected: ',' or 'end of string'")
            elif tok == _EOS:
                return reqs
            else:
                raise SelectorError(f"found '{lit}', expected: !, identifier, or 'end of string'")

    def requirement(self) -> Requirement:
        op: Operator | None = None
        tok, lit = self.consume()
        if tok == _NOT:
            op = Operator.DOES_NOT_EXIST
            tok, lit = self.consume()
        if tok != _ID:
            raise SelectorError(f"found '{lit}', expected: identifier")
        key = lit
        key_errs = label_key_errors(key)
        if key_errs:
            raise SelectorError(f"<nil>: Invalid value: {go_quote(key)}: {'; '.join(key_errs)}")
        t, _ = self.lookahead()
        if t in (_EOS, _COMMA) and op is None:
            op = Operator.EXISTS
        if op in (Operator.EXISTS, Operator.DOES_NOT_EXIST):
            return Requirement(key, op)
        op = self.operator()
        set_based = op in (Operator.IN, Operator.NOT_IN)
        values = self.set_values() if set_based else self.exact_value()
        return _new_requirement(key, op, sorted(values))

    def operator(self) -> Operator:
        tok, lit = self.consume(values=False)
        ops = {
            _IN: Operator.IN,
            _EQ: Operator.EQUALS,
            _DEQ: Operator.DOUBLE_EQUALS,
            _GT: Operator.GREATER_THAN,
            _LT: Operator.LESS_THAN,
            _NOTIN: Operator.NOT_IN,
            _NEQ: Operator.NOT_EQUALS,
        }
        if tok not in ops:
            raise SelectorError(f"found '{lit}', expected: {', '.join(_BINARY_OPERATORS)}")
        return ops[tok]

    def set_values(self) -> set[str]:
        tok, lit = self.consume()
        if tok != _OPEN:
            raise SelectorError(f"found '{lit}' expected: '('")
        tok, lit = self.lookahead()
        if tok in (_ID, _COMMA):
            values = self.identifiers()
            if self.consume()[0] != _CLOSE:
                raise SelectorError(f"found '{lit}', expected: ')'")
            return values
        if tok == _CLOSE:
            self.consume()
            return {""}
        raise SelectorError(f"found '{lit}', expected: ',', ')' or identifier")

    def identifiers(self) -> set[str]:
        values: set[str] = set()
        while True:
            tok, lit = self.consume()
            if tok == _ID:
                values.add(lit)
                t2, l2 = self.lookahead()
                if t2 == _COMMA:
                    continue
                if t2 == _CLOSE:
                    return values
                raise SelectorError(f"found '{l2}', expected: ',' or ')'")
            if tok == _COMMA:
                if not values:
                    values.add("")
                t2, _ = self.lookahead()
                if t2 == _CLOSE:
                    values.add("")
                    return values
                if t2 == _COMMA:
                    self.consume()
                    values.add("")
                continue
            raise SelectorError(f"found '{lit}', expected: ',', or identifier")

    def exact_value(self) -> set[str]:
        tok, _ = self.lookahead()
        if tok in (_EOS, _COMMA):
            return {""}
        tok, lit = self.consume()
        if tok == _ID:
            return {lit}
        raise SelectorError(f"found '{lit}', expected: identifier")


def _go_string_slice(values: list[str]) -> str:
    return "[]string{" + ", ".join(go_quote(v) for v in values) + "}"


def _new_requirement(key: str, op: Operator, values: list[str]) -> Requirement:
    """``labels.NewRequirement``: checks the values and aggregates the errors."""
    errs: list[str] = []
    if op in (Operator.IN, Operator.NOT_IN) and not values:
        errs.append(
            f"values: Invalid value: {_go_string_slice(values)}: "
            "for 'in', 'notin' operators, values set can't be empty"
        )
    if op in (Operator.GREATER_THAN, Operator.LESS_THAN):
        for i, v in enumerate(values):
            if _parse_int64(v) is None:
                errs.append(
                    f"values[{i}]: Invalid value: {go_quote(v)}: "
                    "for 'Gt', 'Lt' operators, the value must be an integer"
                )
    for i, v in enumerate(values):
        value_errs = label_value_errors(v)
        if value_errs:
            errs.append(
                f"values[{i}][{key}]: Invalid value: {go_quote(v)}: {'; '.join(value_errs)}"
            )
    if errs:
        seen: list[str] = []
        for e in errs:
            if e not in seen:
                seen.append(e)
        raise SelectorError(seen[0] if len(seen) == 1 else "[" + ", ".join(seen) + "]")
    return Requirement(key, op, tuple(values))


def parse_selector(text: str) -> Selector:
    """Parse a label selector the way ``labels.Parse`` does; empty selects everything.

    Raises :class:`SelectorError` with the API server's message for a bad selector.
    """
    reqs = _Parser(text).parse()
    reqs.sort(key=lambda r: r.key)
    return Selector(tuple(reqs))
