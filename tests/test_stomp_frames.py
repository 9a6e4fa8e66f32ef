"""STOMP 1.2 framing on bytes, and the exact frames MOM sends VDSM."""
from __future__ import annotations

import json

import pytest

from mom.hypervisor import stomp_jsonrpc
from mom.hypervisor.stomp_frames import (
    Frame, FrameDecoder, FrameError, encode_frame, escape_header, unescape_header)
from mom.hypervisor.vdsm_link import RemoteError


def test_encode_connect_is_unescaped_and_exact() -> None:
    assert stomp_jsonrpc.connect_frame("127.0.0.1") == (
        b"CONNECT\naccept-version:1.2\nhost:127.0.0.1\nheart-beat:0,0\n\n\0")


def test_encode_send_carries_reply_to_and_content_length() -> None:
    body = stomp_jsonrpc.request_body("Host.getAllVmStats", {}, "id-1")
    assert json.loads(body) == {"jsonrpc": "2.0", "method": "Host.getAllVmStats",
                                "params": {}, "id": "id-1"}
    data = stomp_jsonrpc.send_frame("queue-1", body)
    assert data == (b"SEND\ndestination:jms.topic.vdsm_requests\n"
                    b"content-type:application/json\nreply-to:queue-1\n"
                    + f"content-length:{len(body)}\n\n".encode() + body + b"\0")


def test_encode_subscribe() -> None:
    assert stomp_jsonrpc.subscribe_frame("q", "s") == (
        b"SUBSCRIBE\ndestination:q\nid:s\nack:auto\n\n\0")


def test_headers_are_escaped_except_in_connect() -> None:
    assert escape_header("a:b\\c\nd\re") == "a\\cb\\\\c\\nd\\re"
    assert unescape_header("a\\cb\\\\c\\nd\\re") == "a:b\\c\nd\re"
    assert encode_frame("SEND", {"k:1": "v\n"}) == b"SEND\nk\\c1:v\\n\n\n\0"
    with pytest.raises(FrameError):
        encode_frame("CONNECT", {"host": "a\nb"})


def test_undefined_escape_is_an_error() -> None:
    with pytest.raises(FrameError, match="escape"):
        FrameDecoder().feed(b"MESSAGE\nk:\\t\n\n\0")


def test_body_gets_content_length_and_may_hold_nul() -> None:
    data = encode_frame("MESSAGE", {"destination": "q"}, b"a\0b")
    assert data == b"MESSAGE\ndestination:q\ncontent-length:3\n\na\0b\0"
    headers = {"destination": "q", "content-length": "3"}
    assert FrameDecoder().feed(data) == [Frame("MESSAGE", headers, b"a\0b")]


def test_decode_without_content_length_ends_at_nul() -> None:
    frames = FrameDecoder().feed(b"MESSAGE\nk:v\n\nhello\0")
    assert frames == [Frame("MESSAGE", {"k": "v"}, b"hello")]


def test_decode_byte_by_byte_with_heartbeats_and_crlf() -> None:
    stream = (b"\n\r\nCONNECTED\r\nversion:1.2\r\n\r\n\0\n"
              b"MESSAGE\nmessage-id:a\\cb\ncontent-length:2\n\n{}\0\n\n"
              b"RECEIPT\nreceipt-id:7\n\n\0")
    decoder = FrameDecoder()
    frames = []
    for index in range(len(stream)):
        frames += decoder.feed(stream[index:index + 1])
    assert frames == [Frame("CONNECTED", {"version": "1.2"}),
                      Frame("MESSAGE", {"message-id": "a:b", "content-length": "2"}, b"{}"),
                      Frame("RECEIPT", {"receipt-id": "7"})]
    assert decoder.buffered == 0


def test_decode_several_frames_in_one_chunk_and_keeps_partial() -> None:
    one = encode_frame("MESSAGE", {"id": "1"}, b"x")
    two = encode_frame("MESSAGE", {"id": "2"}, b"y" * 100)
    decoder = FrameDecoder()
    frames = decoder.feed(one + two[:50])
    assert [f.headers["id"] for f in frames] == ["1"]
    assert decoder.buffered == 50
    assert decoder.feed(two[50:])[0].body == b"y" * 100


def test_first_header_value_wins() -> None:
    assert FrameDecoder().feed(b"MESSAGE\nk:1\nk:2\n\n\0")[0].headers == {"k": "1"}


@pytest.mark.parametrize("data, message", [
    (b"message\n\n\0", "command"),
    (b"MESSAGE\nnocolon\n\n\0", "without ':'"),
    (b"MESSAGE\ncontent-length:x\n\n\0", "content-length"),
    (b"MESSAGE\ncontent-length:1\n\nab\0", "NUL"),
])
def test_malformed_frames(data: bytes, message: str) -> None:
    with pytest.raises(FrameError, match=message):
        FrameDecoder().feed(data)


def test_oversized_frames_are_refused_before_buffering_them() -> None:
    decoder = FrameDecoder(max_frame=1000, max_header=100)
    with pytest.raises(FrameError, match="exceeds"):
        decoder.feed(b"MESSAGE\ncontent-length:5000\n\n")
    with pytest.raises(FrameError, match="exceeds"):
        FrameDecoder(max_frame=1000).feed(b"MESSAGE\n\n" + b"x" * 1001)
    with pytest.raises(FrameError, match="headers longer"):
        FrameDecoder(max_header=100).feed(b"MESSAGE\n" + b"k:" + b"v" * 200)


def _message(body: object) -> Frame:
    return Frame("MESSAGE", {}, json.dumps(body).encode())


def test_reply_matching_by_id() -> None:
    assert stomp_jsonrpc.reply_for(_message({"jsonrpc": "2.0", "id": "a", "result": [1]}),
                                   "a") == (True, [1])
    # Another request's reply, an event, a batch, a non-MESSAGE frame: not ours
    assert stomp_jsonrpc.reply_for(_message({"id": "b", "result": 1}), "a") == (False, None)
    event = {"jsonrpc": "2.0", "method": "|virt|VM_status|x", "params": {}}
    assert stomp_jsonrpc.reply_for(_message(event), "a") == (False, None)
    assert stomp_jsonrpc.reply_for(_message([{"id": "a"}]), "a") == (False, None)
    assert stomp_jsonrpc.reply_for(Frame("RECEIPT", {}, b""), "a") == (False, None)
    with pytest.raises(RemoteError) as info:
        error = {"code": 1, "message": "no VM"}
        stomp_jsonrpc.reply_for(_message({"id": "a", "error": error}), "a")
    assert (info.value.code, info.value.message) == (1, "no VM")
