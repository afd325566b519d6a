"""What the SDK check scripts share: failing with the reason, named after the script."""

import os
import sys


def fail(message):
    script = os.path.splitext(os.path.basename(sys.argv[0]))[0]
    print(f"{script}: FAILED: {message}", file=sys.stderr)
    sys.exit(1)


def check(condition, message):
    if not condition:
        fail(message)
