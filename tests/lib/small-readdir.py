"""small-readdir.py DIR: prints DIR's entry names, one per line, read with
getdents64 into a 1 KiB buffer (as small-buffer readers such as busybox do),
so a listing of a few hundred entries takes several FUSE readdir requests."""
import ctypes
import os
import struct
import sys

SYS_GETDENTS64 = 217  # x86_64
libc = ctypes.CDLL(None, use_errno=True)
fd = os.open(sys.argv[1], os.O_RDONLY | os.O_DIRECTORY)
buf = ctypes.create_string_buffer(1024)
while True:
    n = libc.syscall(SYS_GETDENTS64, fd, buf, len(buf))
    if n < 0:
        sys.exit("getdents64: " + os.strerror(ctypes.get_errno()))
    if n == 0:
        break
    data = buf.raw[:n]
    pos = 0
    while pos < n:
        _ino, _off, reclen, _type = struct.unpack_from("<QqHB", data, pos)
        name = data[pos + 19:pos + reclen].split(b"\0", 1)[0].decode()
        if name not in (".", ".."):
            print(name)
        pos += reclen
os.close(fd)
