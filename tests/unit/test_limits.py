"""One message limit everywhere: batches split to fit it, the decoder and topics follow it, errors stay small."""

from __future__ import annotations

import os
import subprocess
import sys

import orjson
import pytest

from api.errors import MAX_ERRORS, validation_details
from api.limits import TooLarge, json_batches
from pipeline.broker.topics import CALLS_RAW, PREDICTIONS_ROUNDS, RECORD_OVERHEAD_BYTES, SLEEP_RECORDS, pipeline_topics
from pipeline.settings import Settings
from tests.helpers import REPO, call_event


def test_a_batch_is_split_into_json_arrays_within_the_limit_keeping_every_item_in_order():
    items = [call_event(i) | {"api_call_history_id": f"{i:032x}"} for i in range(300)]
    limit = 16 * 1024
    payloads = list(json_batches(items, limit))
    assert len(payloads) > 1 and all(len(p) <= limit for p in payloads)
    assert [x for p in payloads for x in orjson.loads(p)] == items


def test_a_batch_that_fits_is_one_message_and_an_item_too_big_alone_is_refused():
    items = [{"n": i} for i in range(10)]
    assert list(json_batches(items, len(orjson.dumps(items)))) == [orjson.dumps(items)]
    with pytest.raises(TooLarge, match="item 1"):
        list(json_batches([{"n": 0}, {"x": "y" * 100}], 64))


def _decode_in_a_process(env: dict[str, str], size: int) -> str:
    code = ("from pipeline.broker.entry_messages import decode_json, Invalid\n"
            f"try:\n    decode_json(b'[' + b' ' * {size} + b']')\n    print('ok')\n"
            "except Invalid as exc:\n    print(exc)")
    env = {k: v for k, v in os.environ.items() if not k.startswith("STREAMDESK_")} | env
    return subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=60, check=True).stdout.strip()


def test_the_entry_decoder_follows_streamdesk_max_message_bytes(tmp_path):
    small = {"STREAMDESK_MAX_MESSAGE_BYTES": str(64 * 1024), "STREAMDESK_DATA_DIR": str(tmp_path)}
    assert "over the 64 KiB limit" in _decode_in_a_process(small, 70 * 1024)
    assert _decode_in_a_process({"STREAMDESK_DATA_DIR": str(tmp_path)}, 70 * 1024) == "ok"
    assert "over the 1 MiB limit" in _decode_in_a_process({"STREAMDESK_DATA_DIR": str(tmp_path)}, 1 << 20)


def test_entry_topics_are_created_with_the_message_limit_and_internal_ones_with_room_to_spare():
    s = Settings(max_message_bytes=256 * 1024, _env_file=None)
    limits = {spec.name: spec.max_message_bytes for spec in pipeline_topics(s)}
    assert limits[CALLS_RAW] == limits[SLEEP_RECORDS] == 256 * 1024 + RECORD_OVERHEAD_BYTES
    assert limits[PREDICTIONS_ROUNDS] == 4 * 256 * 1024 == s.max_transport_bytes


def test_validation_details_never_echo_the_input_and_stay_few():
    key, msg, hostile = "k" * 10_000, "m" * 10_000, "x" * 10**6
    errors = [{"loc": ("body", key, i), "msg": msg, "type": "int_parsing", "input": hostile} for i in range(10_000)]
    details = validation_details(errors)
    assert len(details) == MAX_ERRORS + 1 and "9980 more" in details[-1]["msg"]
    assert len(orjson.dumps(details)) < 16 * 1024 and b"xxxx" not in orjson.dumps(details)
