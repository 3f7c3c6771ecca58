"""DynamoDB write capacity units, computed by DynamoDB's published rules from the items a write
request changes in moto (moto itself answers ConsumedCapacity with a fixed 1.0).

The rules applied, per item written:
- PutItem, UpdateItem, DeleteItem and each BatchWriteItem request: 1 unit per started KB of the
  larger of the item before and after the write (at least 1), whether or not a condition held;
- each TransactWriteItems item (Put, Update, Delete, ConditionCheck): twice that;
- each global secondary index whose key attributes the item has before or after: an entry put,
  deleted or (its key changed) both, each 1 unit per started KB of the projected entry; an entry
  whose key and projected attributes did not change costs nothing.
Item sizes are moto's (`Item.size()`: attribute names plus values); index entries are counted
without DynamoDB's 100-byte per-entry storage overhead, which storage, not writes, pays.
"""

import math

from moto.core import DEFAULT_ACCOUNT_ID
from moto.dynamodb.models import dynamodb_backends
from moto.dynamodb.models.dynamo_type import DynamoType

WRITE_ACTIONS = {"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"}


def units(size):
    """Write units of an item of `size` bytes: 1 per started KB, at least 1."""
    return max(1, math.ceil(size / 1024))


def _table(region, name):
    return dynamodb_backends[DEFAULT_ACCOUNT_ID][region].get_table(name)


def _key_of(table, attrs):
    """The (hash, range) DynamoTypes of an item or key given as request JSON."""
    hash_key = DynamoType(attrs[table.hash_key_attr])
    range_key = DynamoType(attrs[table.range_key_attr]) if table.range_key_attr else None
    return hash_key, range_key


def _current(table, key):
    """The item under `key` now, or None; copied so a later write does not change it."""
    try:
        item = table.get_item(*key)
    except Exception:  # noqa: BLE001 - moto raises for a missing item in some versions
        return None
    if item is None:
        return None
    return type(item)(item.hash_key, item.range_key, item.to_json()["Attributes"])


def writes(action, body):
    """(table name, key attributes, transactional) of each item a write request touches."""
    if action in ("PutItem",):
        return [(body["TableName"], body.get("Item", {}), False)]
    if action in ("UpdateItem", "DeleteItem"):
        return [(body["TableName"], body.get("Key", {}), False)]
    if action == "BatchWriteItem":
        found = []
        for name, requests in body.get("RequestItems", {}).items():
            for request in requests:
                if "PutRequest" in request:
                    found.append((name, request["PutRequest"].get("Item", {}), False))
                if "DeleteRequest" in request:
                    found.append((name, request["DeleteRequest"].get("Key", {}), False))
        return found
    if action == "TransactWriteItems":
        found = []
        for item in body.get("TransactItems", []):
            for kind, op in item.items():
                attrs = op.get("Item") if kind == "Put" else op.get("Key")
                found.append((op["TableName"], attrs or {}, True))
        return found
    return []


class Meter:
    """The items a request touches, read before it runs; `after()` gives the units it cost."""

    def __init__(self, region, action, body):
        self.touched = []
        for name, attrs, transactional in writes(action, body):
            try:
                table = _table(region, name)
                key = _key_of(table, attrs)
            except Exception:  # noqa: BLE001 - an unknown table or a bad key: moto refuses it
                continue
            self.touched.append((table, key, transactional, _current(table, key)))

    def after(self):
        """(table units, index units) the request cost."""
        table_units = index_units = 0
        for table, key, transactional, before in self.touched:
            after = _current(table, key)
            base = units(max(_size(before), _size(after)))
            table_units += base * (2 if transactional else 1)
            index_units += _index_units(table, before, after)
        return table_units, index_units


def _size(item):
    return item.size() if item is not None else 0


def _index_units(table, before, after):
    total = 0
    for index in table.global_indexes:
        names = [k["AttributeName"] for k in index.schema]
        old = _index_key(before, names)
        new = _index_key(after, names)
        if old is None and new is None:
            continue
        old_entry = index.project(before).to_json() if old is not None else None
        new_entry = index.project(after).to_json() if new is not None else None
        if old == new:
            if old_entry != new_entry:
                total += units(index.project(after).size())
            continue
        if old is not None:
            total += units(index.project(before).size())
        if new is not None:
            total += units(index.project(after).size())
    return total


def _index_key(item, names):
    if item is None or not all(n in item.attrs for n in names):
        return None
    return tuple(str(item.attrs[n].to_json()) for n in names)
