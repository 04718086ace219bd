"""Input serializers whose fields take exactly their JSON type (README: API, bad input).

DRF coerces on input: `"true"` and `1` pass a BooleanField, `"5"` an IntegerField, `5` a
CharField. Routers rely on exact types, so every input serializer checks the JSON type of each
field before DRF's own validation runs, and a wrong one is a 400 naming the field.
"""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

NUMBER = (int, float)


def _json_type(field: serializers.Field) -> tuple[tuple[type, ...], str] | None:
    """The Python types a field's JSON value may have (bool excluded from numbers)."""
    if isinstance(field, serializers.BooleanField):
        return (bool,), "a boolean"
    if isinstance(field, serializers.IntegerField):
        return (int,), "an integer"
    if isinstance(field, serializers.FloatField | serializers.DecimalField):
        return NUMBER, "a number"
    if isinstance(field, serializers.DictField | serializers.Serializer):
        return (dict,), "an object"
    if isinstance(field, serializers.ListField | serializers.ListSerializer):
        return (list,), "a list"
    if isinstance(field, serializers.CharField | serializers.ChoiceField):
        return (str,), "a string"
    return None


def type_errors(serializer: serializers.Serializer, data: dict[str, Any]) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    for name, field in serializer.fields.items():
        if field.read_only or name not in data:
            continue
        value = data[name]
        if value is None:
            continue  # DRF answers "may not be null" unless the field allows it
        expected = _json_type(field)
        if expected is None:
            continue
        types, label = expected
        if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
            errors[name] = [f"must be {label}"]
    return errors


class JsonInput(serializers.Serializer):
    """Base of every API input serializer: wrong JSON types are refused, never coerced."""

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, dict) and (errors := type_errors(self, data)):
            raise serializers.ValidationError(errors)
        return super().to_internal_value(data)
