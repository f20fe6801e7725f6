import os
import sys

fd = os.open(sys.argv[1], os.O_RDONLY)
with open(sys.argv[2], "wb") as f:
    while True:
        b = os.read(fd, 4096)
        if not b:
            break
        f.write(b)
        f.flush()
