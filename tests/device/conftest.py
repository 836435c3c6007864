"""Fixtures shared by the device tests."""

from pathlib import Path

import pytest

from microgen.device import qemu


@pytest.fixture
def qemu_watch(monkeypatch):
    """Records every QEMU started during the test; afterwards each must be reaped (exit status known,
    no /proc entry left, not even a zombie) and none may still be registered as live."""
    started = []
    init = qemu.QemuProcess.__init__

    def recording_init(self, *args, **kwargs):
        init(self, *args, **kwargs)
        started.append(self)

    monkeypatch.setattr(qemu.QemuProcess, "__init__", recording_init)
    yield started
    assert not qemu.live_processes()
    for q in started:
        assert q.proc.returncode is not None, f"QEMU {q.pid} not reaped"
        cmdline = Path(f"/proc/{q.pid}/cmdline")
        if cmdline.exists():  # the pid may have been reused, but not by our QEMU
            text = cmdline.read_bytes().decode(errors="replace")
            assert not ("qemu-system" in text and f"port={q.port}," in text), f"QEMU {q.pid} still running"
