# The same commands as bench/lib/spawn-floor.mjs, started with Python's
# subprocess (vfork on Linux since Python 3.10, like ninja's posix_spawn)
# from J threads: what starting them costs without copying the parent's
# page tables, for comparison with Node's fork-based spawn.
#
#   python3 bench/lib/vfork-floor.py COMMANDS.json J
import json
import os
import subprocess
import sys
import threading

spec = json.load(open(sys.argv[1]))
jobs = 1 if spec["chained"] else int(sys.argv[2] if len(sys.argv) > 2 else 2)
commands = spec["commands"]
os.makedirs("out", exist_ok=True)
lock = threading.Lock()
next_index = 0


def work():
    global next_index
    while True:
        with lock:
            if next_index >= len(commands):
                return
            cmd = commands[next_index]
            next_index += 1
        subprocess.run(["/bin/sh", "-c", cmd], stdin=subprocess.DEVNULL, check=True)


threads = [threading.Thread(target=work) for _ in range(jobs)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print(f"{len(commands)} commands")
