#!/usr/bin/env python3
"""log-receiver.py KIND SOCKET OUT: a datagram socket standing in for syslog
(/dev/log) or the journal (/run/systemd/journal/socket).

Binds SOCKET and appends one JSON object per datagram to OUT: for syslog
{"raw": LINE}, for the journal the record's fields (journald's native
protocol: KEY=VALUE lines, or KEY, a 64-bit little-endian length and the
bytes, for values holding newlines). Runs until killed."""
import json
import os
import socket
import struct
import sys


def journal_fields(data):
    fields = {}
    while data:
        nl = data.index(b"\n")
        line, data = data[:nl], data[nl + 1:]
        if b"=" in line:
            key, value = line.split(b"=", 1)
        else:
            (size,) = struct.unpack("<Q", data[:8])
            key, value, data = line, data[8:8 + size], data[8 + size + 1:]
        fields[key.decode()] = value.decode(errors="replace")
    return fields


def main():
    kind, path, out = sys.argv[1:4]
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    os.chmod(path, 0o666)
    with open(out, "a", encoding="utf-8") as f:
        while True:
            data = sock.recv(1 << 20)
            if kind == "journal":
                record = journal_fields(data)
            else:
                record = {"raw": data.decode(errors="replace")}
            f.write(json.dumps(record) + "\n")
            f.flush()


main()
