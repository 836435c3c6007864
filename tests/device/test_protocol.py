"""The serial protocol, host side: framing, strict parsing, and a session against a scripted fake link."""

import struct

import pytest

from microgen.device import protocol as P


def test_crc16_check_value():
    assert P.crc16(b"123456789") == 0x29B1  # CRC-16/CCITT-FALSE catalogue check value


def test_round_trip_every_payload_size():
    d = P.FrameDecoder()
    for n in (0, 1, 255, P.MAX_PAYLOAD):
        payload = bytes(range(256))[:n]
        [frame] = d.feed(P.encode(P.Type.LOAD_INPUT, 7, payload))
        assert frame == P.Frame(P.Type.LOAD_INPUT, 7, payload)
    assert not d.pending


def test_encode_refuses_oversize_payload():
    with pytest.raises(ValueError):
        P.encode(P.Type.PING, 1, bytes(P.MAX_PAYLOAD + 1))


def test_byte_by_byte_and_back_to_back():
    stream = P.encode(P.Type.PING, 1, b"a") + P.encode(P.Type.INFO, 2) + P.encode(P.Type.RUN, 3, b"xyz")
    d = P.FrameDecoder()
    frames = [ev for b in stream for ev in d.feed(bytes([b]))]
    assert [(f.type, f.seq, f.payload) for f in frames] == [(1, 1, b"a"), (2, 2, b""), (4, 3, b"xyz")]


def test_garbage_before_a_frame_is_noise():
    garbage = b"\x00\xff\xa5hello\xa5\xa5 boot log\r\n\x5a"
    d = P.FrameDecoder()
    events = d.feed(garbage + P.encode(P.Type.BOOT, 0, b"\x01name"))
    assert events == [P.Frame(P.Type.BOOT, 0, b"\x01name")]
    assert b"boot log" in d.noise


def test_a5_a5_5a_still_syncs():
    d = P.FrameDecoder()
    assert d.feed(b"\xa5" + P.encode(P.Type.PING, 9)) == [P.Frame(P.Type.PING, 9, b"")]


def test_truncated_frame_waits_then_is_abandoned():
    frame = P.encode(P.Type.PING, 4, b"abcdef")
    d = P.FrameDecoder()
    assert d.feed(frame[:-3]) == []
    assert d.pending
    events = d.abandon_partial()
    assert isinstance(events[0], P.BadFrame) and "truncated" in events[0].reason
    assert not d.pending


def test_truncated_frame_does_not_hide_the_next_one():
    """A frame cut short and followed by a good one: the CRC check fails on the mixture and the parser
    rescans from one byte after the false start, finding the good frame."""
    d = P.FrameDecoder()
    good = P.encode(P.Type.INFO | P.REPLY, 2, b"x" * 40)
    events = d.feed(P.encode(P.Type.PING, 1, b"y" * 20)[:12] + good)
    frames = [e for e in events if isinstance(e, P.Frame)]
    assert frames == [P.Frame(P.Type.INFO | P.REPLY, 2, b"x" * 40)]
    assert any(isinstance(e, P.BadFrame) for e in events)


@pytest.mark.parametrize("where", [2, 3, 4, 7, 10, -1])
def test_bad_crc_is_reported_not_misread(where):
    raw = bytearray(P.encode(P.Type.READ_OUTPUT | P.REPLY, 5, b"payload!"))
    raw[where] ^= 0x10
    events = P.FrameDecoder().feed(bytes(raw))
    assert not any(isinstance(e, P.Frame) for e in events)
    assert any(isinstance(e, P.BadFrame) for e in events)


def test_oversize_length_is_rejected_at_once():
    head = P.SYNC + struct.pack("<BBBH", P.VERSION, P.Type.RUN, 1, 0xFFFF)
    d = P.FrameDecoder()
    events = d.feed(head + P.encode(P.Type.PING, 2))
    assert isinstance(events[0], P.BadFrame) and "above" in events[0].reason
    assert events[-1] == P.Frame(P.Type.PING, 2, b"")


def test_foreign_version_is_a_bad_frame():
    events = P.FrameDecoder().feed(P.encode(P.Type.PING, 1, b"", version=9))
    assert len(events) == 1 and "version 9" in events[0].reason


def test_fault_line_is_recognised_across_reads():
    line = b"FAULT pc=0x000012ab lr=0xfffffff9 cfsr=0x00008200 hfsr=0x40000000\n"
    d = P.FrameDecoder()
    assert d.feed(line[:20]) == []
    assert d.feed(line[20:]) == [P.Fault(0x12AB, 0xFFFFFFF9, 0x8200, 0x40000000)]


def test_info_payload_round_trip():
    head = struct.pack("<BBHIIIIIIIIII", 1, 1, 256, 125, 4, 768, 1, 2, 10, 128, 125, 57, 72)
    payload = head + struct.pack("<III", 640, 12, 4) + bytes([4]) + b"ad01"
    info = P.parse_info(payload)
    assert info.counter_unit == "emulated_instructions" and (info.scale_num, info.scale_den) == (125, 4)
    assert info.resolution == 31.25
    assert info.input_bytes == (640,) and info.output_bytes == (12, 4) and info.model_name == "ad01"
    with pytest.raises(ValueError):
        P.parse_info(payload[:-1])
    with pytest.raises(ValueError):
        P.parse_info(payload + b"!")


def test_run_and_profile_payloads():
    r = P.parse_run(struct.pack("<iQI", 0, 123456789012, 7))
    assert (r.status, r.total, r.layers_timed) == (0, 123456789012, 7)
    assert P.parse_profile(struct.pack("<3Q", 1, 2, 3), 3) == (1, 2, 3)
    with pytest.raises(ValueError):
        P.parse_run(b"\x00" * 15)
    assert "bad argument for LOAD_INPUT" in P.parse_error(bytes([5, P.Type.LOAD_INPUT]) + b"range")


def test_harness_defines_carry_the_board_counter():
    assert P.harness_defines("emulated_instructions", 40.0) == (
        "-DMG_COUNTER_UNIT=1", "-DMG_COUNTER_SCALE_NUM=40u", "-DMG_COUNTER_SCALE_DEN=1u")
    assert P.harness_defines("emulated_instructions", 31.25)[1:] == (
        "-DMG_COUNTER_SCALE_NUM=125u", "-DMG_COUNTER_SCALE_DEN=4u")
    assert P.harness_defines("cycles", 1.0)[0] == "-DMG_COUNTER_UNIT=0"
    with pytest.raises(ValueError):
        P.harness_defines("seconds", 1.0)
