#!/usr/bin/env python3
"""The client of the migration tests and benchmark: connects to ADDR PORT, sends one byte
every millisecond and waits for it to come back, until the file STOP exists; then checks that
the connection still answers and writes OUT (JSON): the longest gap between two answers
(the downtime a user sees), how many answers came, and whether the connection survived.

    client.py ADDR PORT STOP OUT
"""
import json
import os
import socket
import sys
import time


def main():
    addr, port, stop, out = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
    result = {"connected": False, "survived": False, "answers": 0, "max_gap_ms": None, "error": None}
    try:
        s = socket.create_connection((addr, port), timeout=5)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        # A migration may stall the service for a while (a 1 GiB dump to disk takes seconds);
        # longer than this is a lost connection.
        s.settimeout(90)
        result["connected"] = True
        with open(out + ".connected", "w"):
            pass
        last = time.monotonic()
        max_gap = 0.0
        while not os.path.exists(stop):
            s.sendall(b"x")
            if s.recv(1) != b"x":
                raise ConnectionError("the server closed the connection")
            now = time.monotonic()
            max_gap = max(max_gap, now - last)
            last = now
            result["answers"] += 1
            delay = 0.001 - (time.monotonic() - now)
            if delay > 0:
                time.sleep(delay)
        s.sendall(b"y")
        result["survived"] = s.recv(1) == b"y"
        result["max_gap_ms"] = round(max_gap * 1000, 1)
        s.close()
    except Exception as e:  # any failure is the result, not a crash
        result["error"] = f"{type(e).__name__}: {e}"
    with open(out + ".tmp", "w") as f:
        json.dump(result, f)
    os.rename(out + ".tmp", out)


if __name__ == "__main__":
    main()
