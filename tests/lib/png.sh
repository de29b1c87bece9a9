# png.sh: checks of screen.png files, for the screenshot tests.
# shellcheck shell=bash
#
# Sourced after common.sh.

# png_check FILE: signature, IHDR, IDAT inflated and unfiltered with
# python's zlib; prints "WxH colours N"; fails when it is not a PNG.
png_check() {
    python3 - "$1" <<'PY' || fail "$1 is not a valid PNG"
import struct, sys, zlib
data = open(sys.argv[1], "rb").read()
if data[:8] != b"\x89PNG\r\n\x1a\n":
    sys.exit("no PNG signature")
pos, chunks = 8, []
while pos < len(data):
    (n,) = struct.unpack(">I", data[pos:pos + 4])
    kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + n]
    (crc,) = struct.unpack(">I", data[pos + 8 + n:pos + 12 + n])
    if zlib.crc32(kind + body) != crc:
        sys.exit("bad CRC in chunk %r" % kind)
    chunks.append((kind, body))
    pos += 12 + n
if chunks[0][0] != b"IHDR" or chunks[-1][0] != b"IEND":
    sys.exit("IHDR not first or IEND not last")
w, h, depth, ctype, _, _, interlace = struct.unpack(">IIBBBBB", chunks[0][1])
if depth != 8 or ctype not in (2, 6) or interlace != 0:
    sys.exit("unexpected format: depth %d colour type %d interlace %d" % (depth, ctype, interlace))
bpp = 3 if ctype == 2 else 4
raw = zlib.decompress(b"".join(b for k, b in chunks if k == b"IDAT"))
stride = w * bpp
if len(raw) != h * (stride + 1):
    sys.exit("IDAT holds %d bytes, expected %d" % (len(raw), h * (stride + 1)))
prev, colours = bytearray(stride), set()
for y in range(h):
    f, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
    for i in range(stride):
        a = line[i - bpp] if i >= bpp else 0
        b, c = prev[i], (prev[i - bpp] if i >= bpp else 0)
        if f == 1: line[i] = (line[i] + a) & 255
        elif f == 2: line[i] = (line[i] + b) & 255
        elif f == 3: line[i] = (line[i] + (a + b) // 2) & 255
        elif f == 4:
            p = a + b - c
            pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
            line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        elif f != 0:
            sys.exit("bad filter %d on line %d" % (f, y))
    for x in range(0, stride, bpp):
        colours.add(bytes(line[x:x + 3]))
    prev = line
print("%dx%d colours %d" % (w, h, len(colours)))
PY
}
