"""The Wyoming protocol (Home Assistant's speech-to-text over TCP) as another surface over the live service: the
server and its connections (`server.py`, `connection.py`), bounded event framing (`framing.py`), `describe`'s
answer (`info.py`) and the optional mDNS advertisement (`zeroconf.py`). Not HTTP, so not under `app/api/`."""
