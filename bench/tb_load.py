"""Times one full load of LOGDIR by TensorBoard's Rust data server (tensorboard_data_server,
shipped by `pip install tensorboard`): starts `server --logdir LOGDIR --reload once -v`,
waits for its "Finished load cycle (DURATION)" log line, kills it. Prints
`wall_s cycle_s`: wall is from process start (includes start-up), cycle is the server's own
figure for the load.
    python3 bench/tb_load.py LOGDIR [extra server flags...]
"""
import re
import subprocess
import sys
import time

import tensorboard_data_server

logdir, extra = sys.argv[1], sys.argv[2:]
cmd = [tensorboard_data_server.server_binary(), "--logdir", logdir, "--reload", "once",
       "--port", "0", "-v", *extra]
start = time.time()
proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                        stderr=subprocess.PIPE, text=True)
units = {"s": 1.0, "ms": 1e-3, "µs": 1e-6, "us": 1e-6, "ns": 1e-9}
try:
    for line in proc.stderr:
        m = re.search(r"Finished load cycle \(([\d.]+)(s|ms|µs|us|ns)\)", line)
        if m:
            wall = time.time() - start
            print(f"{wall:.3f} {float(m.group(1)) * units[m.group(2)]:.3f}")
            break
    else:
        sys.exit("the data server ended without finishing a load cycle")
finally:
    proc.kill()
    proc.wait()
