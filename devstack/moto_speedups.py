"""Speed fixes for moto 5.2.5 (SQS, DynamoDB and the request path), applied in-process by the
local stack's launcher.

moto's SQS recomputes every queue attribute (three scans of the whole queue, each message asking a
slow datetime-based clock whether it is visible) on every SendMessage and twice per message
received, scans the whole queue per receipt handle deleted, and builds the list of every visible
message before a receive takes the first ten. So each call slows as a backlog grows (1.1 s for one
ReceiveMessage with 1,000 messages queued). These patches keep every behaviour and remove those
costs:

- a plain `time.time()` clock for the SQS models;
- queue attributes counted in one pass, read directly where only one attribute is needed
  (ContentBasedDeduplication on send, MessageRetentionPeriod on receive);
- receives walk the queue lazily and stop once they have enough;
- deletes and visibility changes stop at the first message holding the receipt handle, and a
  delete walks the list as it is rather than a copy of it; a message a receive delivers as it
  is being deleted (SQS delivers at least once) is deleted again by its new handle, not refused.

- every request looks its backend up by host: a listing of moto's package directory (a `stat` per
  entry) and then a regular expression per AWS endpoint, under the dispatcher's one lock, so a
  third of a simple request's time went there and requests queued on the lock. The answer
  depends only on the host, so it is kept per host after the first lookup.

- every request takes moto's one backend lock twice (its service's backend and IAM's, to note the
  access key's last use) and, under it, looks itself up in the list of every service's backends
  with a Python-level `==` per entry. An account already in a service's backends was added and
  registered in one locked step (and a reset clears both), so its lookup needs neither.

- every request lists its response class's methods with `inspect.getmembers` to check that the
  action is one of them: kept per class.

- DynamoDB condition expressions (every dedup claim, ledger update and lease has one) are
  tokenized afresh on each request, a fifth of the DynamoDB process's time at 100 changes/s; the
  tokens depend on the expression's text alone and are immutable, so they are kept per text (the
  names and values are still applied per request). Each attribute name is also looked up in a
  list of 573 reserved words: kept as a set.

- DynamoDB update expressions are parsed twice per update of a TransactWriteItems (the request's
  checks, then the update itself), a fifth of the DynamoDB process's time in a first load's
  ledger writes; the parse tree depends on the text alone and is only read or deep-copied before
  it is changed, so one parse is kept per text (a malformed text raises each time).

- every DynamoDB update's validator deep-copies the expression's parse tree before changing it,
  a fifth of the DynamoDB process's time in a first load (`copy.deepcopy`'s memo and reduce
  machinery per node). A tree is nodes (each with its children and parent) whose leaves are
  texts, numbers and `DynamoType` values: it is copied node by node here, the parents pointing
  into the copy, the `DynamoType` leaves by their own deep copy.

- that validation walks the tree once per check (ten of them), and at every node of every walk
  asks, through `ABCMeta`'s `isinstance`, whether the node is a node and whether the check
  handles its class (building the check's map of classes to handlers twice per node to ask).
  Which class a check handles a node class by is fixed by the two classes, so it is kept per
  pair; the walk, its order and what each check does are moto's.

- DynamoDB answers are serialized by walking the botocore shape of every attribute value, trying
  each of its ten members by several spellings: half the time of a BatchGetItem. Attribute values
  moto already holds in wire form (strings, numbers, booleans, nulls, string and number sets,
  maps and lists of those) are copied as they are; anything else (binary) takes moto's path.

- DynamoDB's TransactWriteItems deep-copies the whole table once per item of the transaction (to
  roll back), so a 100-item transaction copies the table 100 times, and concurrent transactions
  fail with 500 while another thread changes the table being copied. Here a transaction runs
  under a lock and backs up only the items it touches; a cancelled transaction restores them.

- every DynamoDB Query lists and sorts the whole table first (a base-table Query then keeps the
  one partition it names; a GSI Query sorts what it keeps again anyway), so each Query slows with
  the table: at 50,000 items nine tenths of the DynamoDB process's time went to sorting, and the
  listing walked the table's dict while other threads wrote to it, failing the Query with 500
  ("dictionary changed size during iteration"). Here a base-table Query reads its partition
  alone, a GSI Query takes the items unsorted (it sorts them by the index's keys and the table's,
  which is a total order), and the listing copies each dict before walking it.

- a base-table Query still sorted its whole partition and walked it from the start to the page's
  exclusive start key on every page, so reading a partition page by page took time growing with
  the square of its items: a first load's flush, which reads back the writes it staged in one
  partition, read 20,000 of them (900-byte items, 19 pages) in 24.1 s and stalled on 600,000.
  Once a partition of 256 items or more is queried, its sort keys are kept in order (each put
  and delete keeps the order), and a forward page, whole or `begins_with`, is cut from that order
  at its start key: the same 20,000 in 1.3 s, 100,000 in 5.9 s. moto still builds the page from
  those items, so its limits, start keys and filters are its own.

They replace moto functions by name, so they are tied to the pinned version: `apply()` refuses any
other moto version rather than patch code it has not been checked against.
"""

import bisect
import collections
import copy
import functools
import hashlib
import inspect
import threading
import time
import weakref

import moto
from moto.core import responses as core_responses
from moto.core.base_backend import BackendDict
from moto.core.serialize import BaseJSONSerializer
from moto.moto_server.werkzeug_app import DomainDispatcherApplication
from moto.sqs import models
from moto.sqs.exceptions import InvalidParameterValue, ReceiptHandleIsInvalid
from moto.dynamodb import models as dynamodb
from moto.dynamodb.models import table as dynamodb_table
from moto.dynamodb.comparisons import ConditionExpressionParser
from moto.dynamodb.parsing import validators
from moto.dynamodb.parsing.ast_nodes import DepthFirstTraverser, Node
from moto.dynamodb.parsing.expressions import UpdateExpressionParser
from moto.dynamodb.parsing.reserved_keywords import ReservedKeywords
from moto.dynamodb.exceptions import (
    ConditionalCheckFailed,
    MockValidationException,
    MultipleTransactionsException,
    TooManyTransactionsException,
    TransactionCanceledException,
    TransactWriteSingleOpException,
)

PINNED = "5.2.5"


def _unix_time(dt=None):
    return time.time() if dt is None else _ORIGINAL_UNIX_TIME(dt)


def _unix_time_millis(dt=None):
    return time.time() * 1000.0 if dt is None else _ORIGINAL_UNIX_TIME_MILLIS(dt)


_ORIGINAL_UNIX_TIME = models.unix_time
_ORIGINAL_UNIX_TIME_MILLIS = models.unix_time_millis


class VisibleMessages:
    """The queue's visible, undelayed messages, walked lazily (moto builds the whole list)."""

    def __init__(self, queue):
        self._queue = queue

    def __iter__(self):
        now = time.time() * 1000.0
        for m in list(self._queue._messages):
            if now > m.visible_at and not now < m.delayed_until:
                yield m

    def __bool__(self):
        return next(iter(self), None) is not None

    def __len__(self):
        return sum(1 for _ in self)


def _counts(queue):
    """(visible, not visible, delayed) in one pass with one clock reading."""
    now = time.time() * 1000.0
    visible = not_visible = delayed = 0
    for m in queue._messages:
        is_visible = now > m.visible_at
        is_delayed = now < m.delayed_until
        if is_delayed:
            delayed += 1
        if not is_visible:
            not_visible += 1
        elif not is_delayed:
            visible += 1
    return visible, not_visible, delayed


_COUNTED = (
    "ApproximateNumberOfMessages",
    "ApproximateNumberOfMessagesNotVisible",
    "ApproximateNumberOfMessagesDelayed",
)


def _attributes(self):
    # moto 5.2.5's Queue.attributes, with the three counts taken in one pass.
    counts = dict(zip(_COUNTED, _counts(self)))
    names = list(self.BASE_ATTRIBUTES)
    if self.fifo_queue:
        names += self.FIFO_ATTRIBUTES
    if self.kms_master_key_id:
        names += self.KMS_ATTRIBUTES
    result = {}
    for name in names:
        if name in counts:
            result[name] = counts[name]
        else:
            result[name] = getattr(self, models.camelcase_to_underscores(name))
    if self.policy:
        result["Policy"] = self.policy
    if self.redrive_policy:
        result["RedrivePolicy"] = models.json.dumps(self.redrive_policy)
    for key in result:
        if isinstance(result[key], bool):
            result[key] = str(result[key]).lower()
    return result


def _content_based_deduplication(queue):
    return queue.fifo_queue and str(getattr(queue, "content_based_deduplication", False)).lower() == "true"


def _send_message(
    self,
    queue_name,
    message_body,
    message_attributes=None,
    delay_seconds=None,
    deduplication_id=None,
    group_id=None,
    system_attributes=None,
    validate_group_id=True,
):
    # moto 5.2.5's send_message, reading ContentBasedDeduplication directly.
    queue = self.get_queue(queue_name)
    self._validate_message(
        queue,
        message_body=message_body,
        delay_seconds=int(delay_seconds or 0),
        deduplication_id=deduplication_id,
        group_id=group_id,
        validate_group_id=validate_group_id,
    )
    delay_seconds = int(delay_seconds) if delay_seconds is not None else queue.delay_seconds
    message = models.Message(str(models.random.uuid4()), message_body, system_attributes)
    if _content_based_deduplication(queue):
        message.deduplication_id = hashlib.sha256(message_body.encode("utf-8")).hexdigest()
    if deduplication_id is not None:
        message.deduplication_id = deduplication_id
        message.sequence_number = "".join(models.random.choice(models.string.digits) for _ in range(20))
    if group_id is not None:
        message.group_id = group_id
    if message_attributes:
        message.message_attributes = message_attributes
    if delay_seconds > models.MAXIMUM_MESSAGE_DELAY:
        raise InvalidParameterValue(
            f"Value {delay_seconds} for parameter DelaySeconds is invalid. "
            "Reason: DelaySeconds must be >= 0 and <= 900."
        )
    message.mark_sent(delay_seconds=delay_seconds)
    queue.add_message(message)
    return message


def _is_valid_for_retention(self, queue_name, message):
    queue = self.get_queue(queue_name)
    retain_until = int(queue.message_retention_period) + message.sent_timestamp / 1000
    return retain_until > time.time()


def _had_receipt_handle(self, receipt_handle):
    return receipt_handle == self.receipt_handle or receipt_handle in self._old_receipt_handles


def _holding(messages, receipt_handle):
    for message in messages:
        if message.had_receipt_handle(receipt_handle):
            return message
    return None


def _delete_message(self, receipt_handle):
    if receipt_handle in self.deleted_messages:
        return
    # moto serves requests on threads, and another request may change the list meanwhile (a send
    # appends, a delete or a move to the dead-letter queue removes). The message is looked for
    # in the list as it is (a message received, so near the front, is found after a few steps;
    # copying a backlog of 100,000 messages per delete was a fifth of the SQS process's time),
    # and, if a removal meanwhile made that walk skip it, again in a copy. The message itself is
    # removed, never the item at an index found before (that removed the message after it when
    # an earlier one went meanwhile, left this one to be delivered again, and refused the
    # other's own delete as an invalid receipt handle).
    message = _holding(self._messages, receipt_handle)
    if message is None:
        message = _holding(list(self._messages), receipt_handle)
    if message is None:
        if receipt_handle in self.deleted_messages:
            return  # deleted meanwhile by a delete with another of its receipt handles
        raise ReceiptHandleIsInvalid()
    self.pending_messages.discard(message)
    # Noted before its handles are read: a receive that picked the message before this delete
    # and marks it received after gives it a handle too late for them, which `_mark_received`
    # then adds here. Kept beside the message, not on it, as a receive deep-copies the message.
    _DELETED_INTO[message] = self.deleted_messages
    self.deleted_messages.update(message.all_receipt_handles)
    try:
        self._messages.remove(message)
    except ValueError:
        pass  # removed meanwhile by a delete with another of its receipt handles


_MARK_RECEIVED = models.Message.mark_received
# A deleted message -> its queue's set of deleted receipt handles.
_DELETED_INTO = weakref.WeakKeyDictionary()


def _mark_received(self, visibility_timeout=None):
    # A receive walks the queue without a lock, so a delete may remove the message between the
    # walk finding it and this mark: SQS may deliver a message twice, but the second delivery's
    # handle must then delete (SQS accepts it), not be refused as invalid.
    _MARK_RECEIVED(self, visibility_timeout)
    deleted = _DELETED_INTO.get(self)
    if deleted is not None:
        deleted.add(self.receipt_handle)


_TRANSACTIONS = threading.Lock()


def _item_key(backend, op_type, op):
    if op_type != "Put":
        return op["Key"]
    table = backend.get_table(op["TableName"])
    attrs = op["Item"]
    key = {table.hash_key_attr: attrs[table.hash_key_attr]}
    if table.range_key_attr is not None:
        key[table.range_key_attr] = attrs[table.range_key_attr]
    return key


def _apply_one(backend, op_type, op, key):
    # moto 5.2.5's handling of one transaction item: the condition, then the write.
    table_name = op["TableName"]
    names = op.get("ExpressionAttributeNames")
    values = op.get("ExpressionAttributeValues")
    condition = op.get("ConditionExpression")
    current = backend.get_item(table_name, key)
    if condition is not None:
        if not dynamodb.get_filter_expression(condition, names, values).expr(current):
            original = None
            if op.get("ReturnValuesOnConditionCheckFailure") == "ALL_OLD" and current:
                original = current.to_json()["Attributes"]
            raise ConditionalCheckFailed(item=original)
    kw = dict(condition_expression=condition, expression_attribute_names=names, expression_attribute_values=values)
    if op_type == "Put":
        backend.put_item(table_name, op["Item"], **kw)
    elif op_type == "Delete":
        backend.delete_item(table_name, key, **kw)
    elif op_type == "Update":
        backend.update_item(table_name, key, update_expression=op["UpdateExpression"], **kw)


def _restore(backend, backups):
    for table_name, key, before in reversed(backups):
        if before is None:
            backend.delete_item(table_name, key)
        else:
            backend.put_item(table_name, before)


def _transact_write_items(self, transact_items):
    if len(transact_items) > 100:
        raise TooManyTransactionsException()
    with _TRANSACTIONS:
        backups = []
        seen = set()
        errors = []
        for item in transact_items:
            if len(item) > 1:
                raise TransactWriteSingleOpException
            op_type, op = next(iter(item.items()))
            try:
                if op_type not in {"ConditionCheck", "Put", "Delete", "Update"}:
                    raise ValueError("Unsupported transaction operation")
                key = _item_key(self, op_type, op)
                unique = (str(op["TableName"]), str(dict(sorted(key.items()))))
                if unique in seen:
                    raise MultipleTransactionsException()
                seen.add(unique)
                before = self.get_item(op["TableName"], key)
                backups.append((op["TableName"], key, copy.deepcopy(before.to_json()["Attributes"]) if before else None))
                _apply_one(self, op_type, op, key)
                errors.append((None, None, None))
            except (MultipleTransactionsException, MockValidationException):
                _restore(self, backups)
                raise
            except ConditionalCheckFailed as e:
                errors.append(("ConditionalCheckFailed", str(e.message), None))
            except Exception as e:  # noqa: BLE001 — reported per item, as moto does
                errors.append((type(e).__name__, str(e), None))
        if any(code is not None for code, _, _ in errors):
            _restore(self, backups)
            raise TransactionCanceledException(errors)


_BACKEND_OF_HOST = {}
_ORIGINAL_GET_BACKEND_FOR_HOST = DomainDispatcherApplication.get_backend_for_host


def _get_backend_for_host(self, host):
    # Called under the dispatcher's lock; the answer is a function of the host alone.
    try:
        return _BACKEND_OF_HOST[host]
    except KeyError:
        backend = _ORIGINAL_GET_BACKEND_FOR_HOST(self, host)
        _BACKEND_OF_HOST[host] = backend
        return backend


_SCALARS = {"S": str, "N": str, "BOOL": bool, "NULL": bool}


def _in_wire_form(value):
    """Whether a DynamoDB attribute value is a dict moto's serializer would emit unchanged."""
    if not isinstance(value, dict) or len(value) != 1:
        return False
    ((kind, inner),) = value.items()
    scalar = _SCALARS.get(kind)
    if scalar is not None:
        return type(inner) is scalar
    if kind in ("SS", "NS"):
        return isinstance(inner, list) and all(type(x) is str for x in inner)
    if kind == "M":
        return isinstance(inner, dict) and all(type(k) is str and _in_wire_form(v) for k, v in inner.items())
    if kind == "L":
        return isinstance(inner, list) and all(_in_wire_form(v) for v in inner)
    return False


_ORIGINAL_JSON_SERIALIZE = BaseJSONSerializer._serialize


def _json_serialize(self, serialized, value, shape, key):
    if shape.name == "AttributeValue" and _in_wire_form(value):
        serialized[self.get_serialized_name(shape, key)] = value
        return
    _ORIGINAL_JSON_SERIALIZE(self, serialized, value, shape, key)


def _backend_dict_getitem(self, account_id):
    if not dict.__contains__(self, account_id):
        self._create_account_specific_backend(account_id)
    return dict.__getitem__(self, account_id)


# A class's methods do not change while the server runs; callers only test membership.
_method_names_from_class = functools.cache(core_responses.method_names_from_class)


_TOKENS = {}
_ORIGINAL_LEX = ConditionExpressionParser._lex_condition_expression


def _lex_condition_expression(self):
    # Callers pop from the deque they get; the nodes themselves are namedtuples nothing mutates.
    tokens = _TOKENS.get(self.condition_expression)
    if tokens is None:
        tokens = tuple(_ORIGINAL_LEX(self))
        if len(_TOKENS) < 10_000:
            _TOKENS[self.condition_expression] = tokens
    return collections.deque(tokens)


_ORIGINAL_MAKE = UpdateExpressionParser.make


@functools.lru_cache(maxsize=10_000)
def _parsed_update_expression(expression):
    return _ORIGINAL_MAKE(expression)


def _make_update_expression(cls, expression):
    # Every update is parsed twice per request (the request's checks, then update_item), each
    # time from its text. The tree is only read (find_clauses) or deep-copied before it is
    # changed (the validator), so one parse serves every request sending the same text; a
    # malformed text raises each time, as exceptions are not cached.
    return _parsed_update_expression(expression)


def _clone_tree(node, parent=None):
    # A copy of a parse tree as copy.deepcopy makes it: every node new, each parent the copy's.
    new = object.__new__(node.__class__)
    state = dict(node.__dict__)
    new.__dict__ = state
    if "parent" in state:
        state["parent"] = parent
    children = state.get("children")
    if isinstance(children, list):
        state["children"] = [_clone_child(child, new) for child in children]
    return new


def _clone_child(child, parent):
    if isinstance(child, Node):
        return _clone_tree(child, parent)
    if isinstance(child, (str, int, float, bool, type(None))):
        return child
    return copy.deepcopy(child)


def _validator_deepcopy(value, memo=None):
    # What the validators module calls `deepcopy`: parse trees by _clone_tree (a tree handed to
    # a validator is a root: its parent is None), anything else as before.
    if isinstance(value, Node) and memo is None and value.parent is None:
        return _clone_tree(value)
    return copy.deepcopy(value, memo)


_NODE_CLASSES = {}
_HANDLED_BY = {}


def _is_node_class(cls):
    known = _NODE_CLASSES.get(cls)
    if known is None:
        known = _NODE_CLASSES[cls] = issubclass(cls, Node)
    return known


def _handler_position(traverser, node_class):
    # The position in the traverser's processing map of the first class the node is an instance
    # of (moto's `process` takes the first), or -1: fixed by the two classes.
    key = (type(traverser), node_class)
    position = _HANDLED_BY.get(key)
    if position is None:
        classes = list(traverser._processing_map())
        position = next((i for i, c in enumerate(classes) if issubclass(node_class, c)), -1)
        _HANDLED_BY[key] = position
    return position


def _traverse_node_recursively(self, node, child_id=-1):
    # moto's DepthFirstTraverser.traverse_node_recursively, its class checks kept per class.
    if not _is_node_class(type(node)):
        return node
    parent_node = node.parent
    if node.children is not None:
        for i, child_node in enumerate(node.children):
            self.pre_processing_of_child(node, i)
            self.traverse_node_recursively(child_node, i)
    position = _handler_position(self, type(node))
    if position >= 0:
        node = list(self._processing_map().values())[position](node)
        node.parent = parent_node
        if parent_node:
            parent_node.children[child_id] = node
    return node


_QUERY = threading.local()
_ORIGINAL_QUERY = dynamodb.Table.query
_QUERY_SIGNATURE = inspect.signature(_ORIGINAL_QUERY)
_ORIGINAL_PUT_ITEM = dynamodb.Table.put_item
_ORIGINAL_DELETE_ITEM = dynamodb.Table.delete_item
# A partition's sort keys are kept in order once it holds this many items and is queried.
_SORTED_FROM = 256
# Guards the kept orders: a put or delete and the order it changes move together.
_SORTED = threading.RLock()


def _query(self, hash_key, *args, **kwargs):
    # The partition a base-table Query names, or "unsorted" for a GSI's: read by _all_items; and,
    # when the page can be cut from the partition's kept order, just the items the page can see.
    call = _QUERY_SIGNATURE.bind(self, hash_key, *args, **kwargs).arguments
    index_name = call.get("index_name")
    _QUERY.table = self
    _QUERY.partition = hash_key if index_name is None else None
    _QUERY.window = None if index_name is not None else _page_window(self, hash_key, call)
    try:
        return _ORIGINAL_QUERY(self, hash_key, *args, **kwargs)
    finally:
        _QUERY.table = None
        _QUERY.window = None


def _kept_order(table, hash_key):
    # The partition's sort keys in order (their cast values), built on the first query that
    # can use it and kept in order by every put and delete since; None for a small partition.
    kept = table.__dict__.setdefault("_devstack_sorted", {})
    keys = kept.get(hash_key)
    if keys is None:
        part = table.items.get(hash_key)
        if part is None or len(part) < _SORTED_FROM:
            return None
        keys = sorted(key.cast_value for key in list(part))
        kept[hash_key] = keys
    return keys


def _page_window(table, hash_key, call):
    """The items a forward base-table Query of one partition reads, from its exclusive start
    key on: at most its limit plus one (the one that tells moto the page is full), or up to the
    item that takes the page past 1 MB, and for `begins_with` the matching items and the first
    one after them. None when the query is not of that kind (moto then reads the partition)."""
    comparison, values = call.get("range_comparison"), call.get("range_objs") or []
    kind = table.range_key_type
    prefix = None
    if comparison == "BEGINS_WITH" and kind == "S" and len(values) == 1:
        prefix = values[0].cast_value
    elif comparison:
        return None
    if (
        not table.range_key_attr
        or kind not in ("S", "N")
        or call.get("scan_index_forward") is False
        or call.get("filter_kwargs")
        or call.get("range_key_conditions") and len(call["range_key_conditions"]) > 1
    ):
        return None
    with _SORTED:
        keys = _kept_order(table, hash_key)
        if keys is None:
            return None
        start = 0
        after = call.get("exclusive_start_key")
        if after and table.range_key_attr in after:
            start = bisect.bisect_right(keys, dynamodb.DynamoType(after[table.range_key_attr]).cast_value)
        if prefix is not None:
            start = max(start, bisect.bisect_left(keys, prefix))
        part, limit = table.items[hash_key], call.get("limit")
        window, size = [], 0
        for position in range(start, len(keys)):
            key = keys[position]
            item = part[dynamodb.DynamoType({kind: key if kind == "S" else str(key)})]
            window.append(item)
            if prefix is not None and not key.startswith(prefix):
                break
            size += item.size()
            if (limit and len(window) > limit) or size > dynamodb_table.RESULT_SIZE_LIMIT:
                break
        return window


def _put_item(self, item_attrs, *args, **kwargs):
    with _SORTED:
        item = _ORIGINAL_PUT_ITEM(self, item_attrs, *args, **kwargs)
        keys = self.__dict__.get("_devstack_sorted", {}).get(item.hash_key)
        if keys is not None and item.range_key is not None:
            value = item.range_key.cast_value
            at = bisect.bisect_left(keys, value)
            if at == len(keys) or keys[at] != value:
                keys.insert(at, value)
        return item


def _delete_item(self, hash_key, range_key):
    with _SORTED:
        item = _ORIGINAL_DELETE_ITEM(self, hash_key, range_key)
        keys = self.__dict__.get("_devstack_sorted", {}).get(hash_key)
        if keys is not None and item is not None and range_key is not None:
            value = range_key.cast_value
            at = bisect.bisect_left(keys, value)
            if at < len(keys) and keys[at] == value:
                del keys[at]
        return item


def _all_items(self):
    # list(...) of a dict's view copies it in one C call, which no other thread interleaves.
    querying = getattr(_QUERY, "table", None) is self
    if querying and getattr(_QUERY, "window", None) is not None:
        return _QUERY.window
    if querying and _QUERY.partition is not None:
        found = self.items.get(_QUERY.partition)
        if found is None:
            return []
        return list(found.values()) if self.range_key_attr else [found]
    items = []
    for hash_set in list(self.items.values()):
        if self.range_key_attr:
            items.extend(list(hash_set.values()))
        else:
            items.append(hash_set)
    if querying:
        return items
    return sorted(items, key=lambda x: (x.hash_key, x.range_key) if x.range_key else x.hash_key)


def apply():
    """Applies the fixes; refuses a moto version they were not written for."""
    if moto.__version__ != PINNED:
        raise SystemExit(
            f"devstack/moto_speedups.py patches moto {PINNED}, found {moto.__version__}: "
            f"pin moto[server]=={PINNED} in devstack/requirements.txt or update the patches"
        )
    models.unix_time = _unix_time
    models.unix_time_millis = _unix_time_millis
    models.Queue.attributes = property(_attributes)
    models.Queue.messages = property(VisibleMessages)
    models.Queue.delete_message = _delete_message
    models.Message.had_receipt_handle = _had_receipt_handle
    models.Message.mark_received = _mark_received
    models.SQSBackend.send_message = _send_message
    models.SQSBackend.is_message_valid_based_on_retention_period = _is_valid_for_retention
    dynamodb.DynamoDBBackend.transact_write_items = _transact_write_items
    dynamodb.Table.query = _query
    dynamodb.Table.all_items = _all_items
    dynamodb.Table.put_item = _put_item
    dynamodb.Table.delete_item = _delete_item
    DomainDispatcherApplication.get_backend_for_host = _get_backend_for_host
    BaseJSONSerializer._serialize = _json_serialize
    BackendDict.__getitem__ = _backend_dict_getitem
    core_responses.method_names_from_class = _method_names_from_class
    ConditionExpressionParser._lex_condition_expression = _lex_condition_expression
    UpdateExpressionParser.make = classmethod(_make_update_expression)
    validators.deepcopy = _validator_deepcopy
    DepthFirstTraverser.traverse_node_recursively = _traverse_node_recursively
    ReservedKeywords.KEYWORDS = frozenset(ReservedKeywords.get_reserved_keywords())
