"""The resident memory of this test process, for the loose long-run checks."""
import os


def rss_mib() -> float:
    """Resident set size in MiB, from /proc/self/statm."""
    with open('/proc/self/statm') as f:
        return int(f.read().split()[1]) * os.sysconf('SC_PAGE_SIZE') / 2 ** 20
