"""WYOMING_ZEROCONF: the server advertises itself on mDNS (`_wyoming._tcp.local.`) as Home Assistant's discovery
expects, and withdraws on shutdown. Multicast must not leave this machine, so the whole exchange runs in a fresh
network namespace that has nothing but loopback (`unshare --net`; as a user, with `--map-root-user`): the server
and zeroconf's own browser, both bound to 127.0.0.1 (`tests/zeroconf_probe.py`)."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.server import ROOT, free_port


def test_the_server_is_found_by_mdns_and_withdrawn_on_shutdown() -> None:
    command = ["unshare", "--net", "--map-root-user", sys.executable, "-m", "tests.zeroconf_probe", str(free_port())]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["interfaces"] == ["lo"]  # nothing else to send to
    name = "living-room-stt._wyoming._tcp.local."
    assert (name, "Added") in [tuple(s) for s in result["seen"]]
    assert result["addresses"] == ["127.0.0.1"] and result["server"] == "living-room-stt.local."
    assert result["models"] == ["tiny.en"]  # described at the advertised address and port
    assert (name, "Removed") in [tuple(s) for s in result["seen"]]  # the goodbye on shutdown
