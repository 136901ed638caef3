# Waits until the file `gate` exists (the queue benchmark opens it once its runs are queued).
import os
import time

while not os.path.exists("gate"):
    time.sleep(0.01)
