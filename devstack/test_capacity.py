"""Checks devstack/capacity.py's write units against DynamoDB's published rules, on moto in
process: a small and a 3 KB put, an update that changes only an attribute the index does not
project, an update that moves an item's index key, a delete, a failed conditional put, and a
transaction (twice the units).

Usage: .venv/bin/python devstack/test_capacity.py   (run by `make test`; exits 1 on a failure)
"""

import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import boto3  # noqa: E402
from moto import mock_aws  # noqa: E402

import capacity  # noqa: E402

REGION = "us-east-1"


def text(n):
    return {"S": "x" * n}


class Capacity(unittest.TestCase):
    def setUp(self):
        self.mock = mock_aws()
        self.mock.start()
        self.ddb = boto3.client("dynamodb", region_name=REGION)
        self.ddb.create_table(
            TableName="t",
            BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[{"AttributeName": a, "AttributeType": "S"}
                                  for a in ("pk", "sk", "idx")],
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"},
                       {"AttributeName": "sk", "KeyType": "RANGE"}],
            GlobalSecondaryIndexes=[{
                "IndexName": "keys",
                "KeySchema": [{"AttributeName": "idx", "KeyType": "HASH"}],
                "Projection": {"ProjectionType": "KEYS_ONLY"},
            }, {
                "IndexName": "all",
                "KeySchema": [{"AttributeName": "idx", "KeyType": "HASH"},
                              {"AttributeName": "sk", "KeyType": "RANGE"}],
                "Projection": {"ProjectionType": "ALL"},
            }],
        )

    def tearDown(self):
        self.mock.stop()

    def spent(self, action, body):
        meter = capacity.Meter(REGION, action, body)
        try:
            getattr(self.ddb, _snake(action))(**body)
        except self.ddb.exceptions.ConditionalCheckFailedException:
            pass
        return sum(meter.after())

    def test_units_follow_the_item_sizes_and_the_indexes(self):
        key = {"pk": {"S": "a"}, "sk": {"S": "s"}}
        small = {**key, "v": text(100)}
        self.assertEqual(self.spent("PutItem", {"TableName": "t", "Item": small}), 1,
                         "under 1 KB, in no index")
        big = {**key, "v": text(3000), "idx": {"S": "i1"}}
        # 3 KB in the table, a keys-only entry (1) and a whole copy (3) in the indexes.
        self.assertEqual(self.spent("PutItem", {"TableName": "t", "Item": big}), 3 + 1 + 3)
        # An attribute only the ALL index projects: the keys-only entry is not written.
        update = {"TableName": "t", "Key": key, "UpdateExpression": "SET v = :v",
                  "ExpressionAttributeValues": {":v": text(3010)}}
        self.assertEqual(self.spent("UpdateItem", update), 3 + 3)
        # The index key moves: each index deletes the old entry and puts the new one.
        move = {"TableName": "t", "Key": key, "UpdateExpression": "SET idx = :i",
                "ExpressionAttributeValues": {":i": {"S": "i2"}}}
        self.assertEqual(self.spent("UpdateItem", move), 3 + (1 + 1) + (3 + 3))
        # A condition that fails still costs the write; nothing changes in the indexes.
        refused = {"TableName": "t", "Item": big, "ConditionExpression": "attribute_not_exists(pk)"}
        self.assertEqual(self.spent("PutItem", refused), 3)
        self.assertEqual(self.spent("DeleteItem", {"TableName": "t", "Key": key}), 3 + 1 + 3)

    def test_a_transaction_costs_twice_its_items(self):
        items = [{"Put": {"TableName": "t", "Item": {"pk": {"S": f"p{i}"}, "sk": {"S": "s"},
                                                      "v": text(1500)}}} for i in range(3)]
        self.assertEqual(self.spent("TransactWriteItems", {"TransactItems": items}), 3 * 2 * 2)


def _snake(action):
    return "".join("_" + c.lower() if c.isupper() else c for c in action).lstrip("_")


if __name__ == "__main__":
    unittest.main(verbosity=2)
