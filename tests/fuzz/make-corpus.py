#!/usr/bin/env python3
"""make-corpus.py - writes the seed corpus of fuzz-api.c into corpus/ (next to this script).

Each seed is a small program in fuzz-api.c's input format (the comment at the top of fuzz-api.c):
one configuration byte, then (op, arg) pairs. Together the seeds use every operation, from client
threads and from tasks, every deadline kind, and every last act of the main thread. Run it again
after changing the format; libFuzzer takes it from there. The seeds of format 1 (the first 21
operations) are unchanged by format 2, which adds the embedding API's operations.
"""
import os

OPS = [
    "enqueue", "batch", "cancel", "wait", "wait_until", "wait_nohelp", "retain", "release",
    "share", "take", "state", "shutdown", "group", "parallel_for", "reduce", "spawn", "sleep",
    "bad_args", "destroy_in_task", "retain_many", "wait_self",
    # Format 2 only (config(..., fmt=2 or 3)).
    "submit", "enqueue_ex", "group_ex", "wait_idle", "stats", "try_for", "reduce_big", "trace",
    "current",
]
N_OPS_V1 = OPS.index("wait_self") + 1
# Programs: clients 0-2, task programs 0-4.
C0, C1, C2, T0, T1, T2, T3, T4 = range(8)
NO_PROG = 7
# Deadline kinds of wait_until / wait_nohelp.
DL_NONE, DL_ZERO, DL_PAST, DL_TINY, DL_SHORT, DL_NEG, DL_NEG_NSEC, DL_INVALID = range(8)


def config(workers=2, clients=2, last=0, wait_after=False, fmt=1):
    """Byte 0: workers 1-4, 2 or 3 clients, the main thread's last act, when it waits; the
    format: 1 the first N_OPS_V1 operations, 2 all of them, 3 all of them and the main thread
    waits for idleness before its last act."""
    return bytes([(workers - 1) | (clients == 3) << 2 | last << 3 | wait_after << 5 |
                  {1: 0, 2: 1, 3: 2}[fmt] << 6])


def config2(workers=2, clients=2, last=0, wait_after=False, final_idle=False):
    return config(workers, clients, last, wait_after, 3 if final_idle else 2)


def task(prog=NO_PROG, code=0, extra=0):
    """A task byte: its program (T0-T4 or NO_PROG), its code index (0-3), bits 5-7."""
    if prog != NO_PROG:
        prog -= T0
    return prog | code << 3 | extra << 5


def op(who, name, arg=0):
    return bytes([who << 5 | OPS.index(name), arg])


def wait_kind(which, kind):
    return which | kind << 4


def seeds():
    s = {}
    s["enqueue-wait"] = config() + op(C0, "enqueue", task()) + op(C0, "wait") + \
        op(C1, "enqueue", task(code=2)) + op(C1, "wait")
    s["enqueue-release-at-once"] = config(1) + op(C0, "enqueue", task(extra=2)) + \
        op(C1, "enqueue", task(code=3, extra=2))
    s["batch"] = config(3) + op(C0, "batch", task(code=1, extra=5)) + op(C0, "wait", 0) + \
        op(C0, "wait", 3) + op(C1, "batch", task(extra=0))
    s["batch-in-task"] = config(2) + op(C0, "enqueue", task(T0)) + op(C0, "wait") + \
        op(T0, "batch", task(code=2, extra=7)) + op(T0, "wait", 2) + op(T0, "wait", 5)
    s["cancel"] = config(1) + op(C0, "enqueue", task(T0)) + op(C0, "enqueue", task()) + \
        op(C0, "cancel", 1) + op(C0, "cancel", 0) + op(C0, "wait", 1) + op(T0, "sleep", 60)
    s["cancel-in-task"] = config(1) + op(C0, "enqueue", task(T0)) + op(T0, "enqueue", task()) + \
        op(T0, "cancel", 0) + op(T0, "wait", 0)
    for kind in range(8):
        s["wait-until-%d" % kind] = config(2) + op(C0, "enqueue", task(T0)) + \
            op(C0, "wait_until", wait_kind(0, kind)) + op(T0, "sleep", 40) + \
            op(C1, "enqueue", task()) + op(C1, "wait_until", wait_kind(0, kind))
    s["wait-until-in-task"] = config(2) + op(C0, "enqueue", task(T0)) + \
        op(T0, "enqueue", task(T1)) + op(T0, "wait_until", wait_kind(0, DL_TINY)) + \
        op(T0, "wait_until", wait_kind(0, DL_NEG)) + op(T0, "wait", 0) + op(T1, "sleep", 20)
    s["nohelp-client"] = config(1) + op(C0, "enqueue", task(T0)) + \
        op(C0, "wait_nohelp", wait_kind(0, DL_NONE)) + op(T0, "enqueue", task()) + \
        op(T0, "wait", 0) + op(C1, "shutdown", 0)
    s["nohelp-client-negative"] = config(1) + op(C0, "enqueue", task(T0)) + \
        op(C1, "enqueue", task()) + op(C1, "wait_nohelp", wait_kind(0, DL_NEG)) + \
        op(T0, "sleep", 63) + op(C0, "wait_nohelp", wait_kind(0, DL_NEG_NSEC))
    s["nohelp-task"] = config(2) + op(C0, "enqueue", task(T0)) + op(T0, "enqueue", task()) + \
        op(T0, "enqueue", task(code=2)) + op(T0, "wait_nohelp", wait_kind(1, DL_NONE)) + \
        op(T0, "wait_nohelp", wait_kind(0, DL_SHORT))
    s["nohelp-shutdown-race"] = config(2, 3) + op(C0, "enqueue", task(T0)) + \
        op(C0, "share", 0) + op(C1, "take") + op(C1, "wait_nohelp", 0) + \
        op(C2, "shutdown", 0) + op(T0, "sleep", 50) + op(T0, "shutdown", 0) + \
        op(T0, "enqueue", task())
    s["retain-release"] = config(2) + op(C0, "enqueue", task(T0)) + op(C0, "retain", 0) + \
        op(C0, "release", 0) + op(C0, "retain", 0) + op(C0, "wait", 1) + op(C0, "release", 1) + \
        op(T0, "sleep", 10)
    s["share-take"] = config(2, 3) + op(C0, "enqueue", task(T0)) + op(C0, "share", 0) + \
        op(C0, "release", 0) + op(C1, "sleep", 30) + op(C1, "take") + op(C1, "wait", 0) + \
        op(C2, "take") + op(C2, "cancel", 0) + op(T0, "take") + op(T0, "wait", 0)
    s["state"] = config(1) + op(C0, "enqueue", task(T0, code=3)) + op(C0, "state", 0) + \
        op(C0, "wait", 0) + op(C0, "state", 0) + op(T0, "sleep", 5)
    s["shutdown-drain-race"] = config(2) + op(C0, "enqueue", task(T0)) + op(C0, "batch", 0x60) + \
        op(C1, "shutdown", 0) + op(C0, "enqueue", task()) + op(T0, "enqueue", task()) + \
        op(T0, "sleep", 20) + op(T0, "enqueue", task())
    s["shutdown-cancel-race"] = config(2) + op(C0, "batch", task(T0, extra=7)) + \
        op(C1, "shutdown", 1) + op(C0, "wait", 3) + op(C0, "enqueue", task()) + \
        op(T0, "sleep", 30) + op(T0, "enqueue", task()) + op(T0, "wait", 0)
    s["shutdown-concurrent"] = config(2, 3) + op(C0, "enqueue", task(T0)) + \
        op(C0, "shutdown", 0) + op(C1, "shutdown", 1) + op(C2, "shutdown", 0) + \
        op(T0, "sleep", 63) + op(T0, "enqueue", task())
    s["shutdown-in-task"] = config(1) + op(C0, "enqueue", task(T0)) + op(T0, "shutdown", 0) + \
        op(T0, "shutdown", 1) + op(T0, "destroy_in_task")
    s["group"] = config(3) + op(C0, "group", task(T0, code=2, extra=3)) + \
        op(T0, "group", task(code=0, extra=1)) + op(C1, "group", task(extra=2))
    s["group-cancel"] = config(1) + op(C0, "group", task(T0, extra=7)) + op(T0, "sleep", 40) + \
        op(C1, "group", task(code=3, extra=4))
    s["for"] = config(3) + op(C0, "parallel_for", 31) + op(C1, "parallel_for", 17 | 3 << 6) + \
        op(C0, "parallel_for", 0)
    s["for-nested"] = config(2) + op(C0, "parallel_for", 12 | 32) + op(C0, "enqueue", task(T0)) + \
        op(T0, "parallel_for", 20 | 32 | 1 << 6)
    s["reduce"] = config(4) + op(C0, "reduce", 31) + op(C1, "reduce", 9 | 2 << 6) + \
        op(C0, "reduce", 0)
    s["reduce-nested"] = config(2) + op(C0, "reduce", 16 | 32) + op(C1, "enqueue", task(T0)) + \
        op(T0, "reduce", 25 | 32)
    s["loop-cancel-shutdown"] = config(1) + op(C0, "enqueue", task(T0)) + \
        op(C1, "parallel_for", 20) + op(C1, "reduce", 20) + op(C0, "shutdown", 1) + \
        op(T0, "sleep", 63)
    s["spawn-client"] = config(2) + op(C0, "spawn", 3 | 2 << 2) + op(C1, "spawn", 1 | 3 << 2 | 16)
    s["spawn-task"] = config(3) + op(C0, "enqueue", task(T0)) + op(C1, "enqueue", task(T0)) + \
        op(T0, "spawn", 3 | 3 << 2 | 2 << 5) + op(T0, "spawn", 2 | 1 << 2 | 16 | 128)
    s["bad-args"] = config(2) + op(C0, "enqueue", task()) + b"".join(
        op(C0, "bad_args", i) for i in range(12)) + \
        op(C1, "enqueue", task(T0)) + b"".join(op(T0, "bad_args", i) for i in range(12))
    s["retain-many"] = config(1) + op(C0, "enqueue", task()) + op(C0, "retain_many", 0) + \
        op(C0, "wait", 0) + op(C0, "retain_many", 0)
    s["wait-self"] = config(1) + op(C0, "enqueue", task(T0)) + op(T0, "wait_self", 0) + \
        op(T0, "wait_self", 1)
    s["ancestor-wait"] = config(1) + op(C0, "enqueue", task(T0)) + \
        op(T0, "enqueue", task(NO_PROG, extra=1)) + op(T0, "enqueue", task()) + \
        op(T0, "wait", 1) + op(T0, "wait", 0)
    s["deep"] = config(2, 3) + op(C0, "enqueue", task(T0)) + op(C1, "enqueue", task(T1)) + \
        op(C2, "batch", task(T2, extra=3)) + op(T0, "enqueue", task(T1, code=2)) + \
        op(T0, "wait", 0) + op(T1, "enqueue", task(T2)) + op(T1, "share", 0) + \
        op(T2, "take") + op(T2, "wait_until", wait_kind(0, DL_TINY)) + \
        op(T2, "spawn", 1 | 1 << 2 | 128) + op(C0, "take") + op(C0, "wait")
    s.update(seeds_v2())
    for last in range(4):
        for wait_after in (False, True):
            s["last-act-%d%s" % (last, "-after" if wait_after else "")] = \
                config(last + 1, 2 + wait_after, last, wait_after) + \
                op(C0, "enqueue", task(T3)) + op(C1, "enqueue", task(T3, code=2)) + \
                op(T3, "enqueue", task(T4)) + op(T4, "sleep", 25)
    return s


# Format 2: submit's variants, stats' rooms, trace's actions.
SUB_PLAIN, SUB_DROP, SUB_NODROP, SUB_DROP3 = range(4)
ROOM_NULL, ROOM_NONE, ROOM_LESS, ROOM_ALL, ROOM_MORE = range(5)
TR_START, TR_STOP, TR_CHURN, TR_TWICE = range(4)


def sub(task_byte, how):
    return (task_byte & 31) | how << 5


def idle(kind, stats_room=ROOM_ALL):
    return kind | stats_room << 3


def seeds_v2():
    s = {}
    s["submit"] = config2() + op(C0, "submit", sub(task(), SUB_PLAIN)) + \
        op(C0, "submit", sub(task(code=2), SUB_DROP)) + \
        op(C0, "submit", sub(task(T0, code=3), SUB_NODROP)) + \
        op(C1, "submit", sub(task(code=2), SUB_DROP3)) + op(C1, "wait_idle", idle(DL_NONE)) + \
        op(T0, "submit", sub(task(code=3), SUB_DROP)) + op(T0, "sleep", 20)
    s["submit-cancel-shutdown"] = config2(1, 2, 2) + op(C0, "enqueue", task(T0)) + \
        op(C0, "submit", sub(task(), SUB_DROP3)) + op(C0, "submit", sub(task(code=2), SUB_DROP)) + \
        op(C1, "shutdown", 1) + op(C1, "submit", sub(task(), SUB_DROP)) + \
        op(T0, "sleep", 60) + op(T0, "submit", sub(task(), SUB_DROP))
    s["enqueue-ex-cancel"] = config2(1) + op(C0, "enqueue", task(T0)) + \
        op(C0, "enqueue_ex", task()) + op(C0, "enqueue_ex", task(code=2) | 128) + \
        op(C0, "cancel", 1) + op(C0, "cancel", 2) + op(C0, "wait", 1) + op(T0, "sleep", 50) + \
        op(C1, "enqueue_ex", task(T1) | 64) + op(T1, "enqueue_ex", task()) + op(T1, "cancel", 0)
    s["enqueue-ex-share-cancel"] = config2(2, 3) + op(C0, "enqueue", task(T0)) + \
        op(C0, "enqueue_ex", task()) + op(C0, "share", 1) + op(C0, "cancel", 1) + \
        op(C1, "take") + op(C1, "cancel", 0) + op(C2, "shutdown", 1) + op(T0, "sleep", 40)
    s["group-ex"] = config2(2) + op(C0, "group_ex", task(T0, code=2, extra=3)) + \
        op(T0, "group_ex", task(extra=2) | 128) + op(C1, "group_ex", task(extra=3) | 128)
    s["group-ex-cancel-shutdown"] = config2(1, 2, 2) + op(C0, "enqueue", task(T0)) + \
        op(C0, "group_ex", task(extra=3)) + op(C1, "shutdown", 1) + op(T0, "sleep", 50)
    s["wait-idle"] = config2(2, 2, 0, False, True) + op(C0, "enqueue", task(T0)) + \
        op(C0, "wait_idle", idle(DL_NONE)) + op(C0, "stats", ROOM_ALL) + \
        op(C1, "batch", task(T1, extra=4)) + op(C1, "wait_idle", idle(DL_SHORT, ROOM_MORE)) + \
        op(C1, "wait_idle", idle(DL_NONE, ROOM_LESS)) + op(T0, "enqueue", task(T1)) + \
        op(T0, "wait_idle", idle(DL_NONE)) + op(T1, "wait_idle", idle(DL_INVALID)) + \
        op(T1, "sleep", 30)
    s["wait-idle-deadlines"] = config2(1) + op(C0, "enqueue", task(T0)) + b"".join(
        op(C0, "wait_idle", idle(k)) for k in range(8)) + op(T0, "sleep", 63) + \
        op(C1, "wait_idle", idle(DL_TINY | 8))
    s["wait-idle-nohelp"] = config2(1) + op(C0, "enqueue", task(T0)) + \
        op(C0, "wait_nohelp", wait_kind(0, DL_NONE)) + op(T0, "wait_idle", idle(DL_NONE)) + \
        op(T0, "stats", ROOM_MORE) + op(C1, "wait_idle", idle(DL_NONE))
    s["wait-idle-shutdown"] = config2(2, 3) + op(C0, "batch", task(T0, extra=5)) + \
        op(C1, "wait_idle", idle(DL_NONE)) + op(C2, "shutdown", 0) + \
        op(C2, "wait_idle", idle(DL_NONE)) + op(T0, "submit", sub(task(), SUB_DROP)) + \
        op(T0, "sleep", 30)
    s["stats"] = config2(4) + op(C0, "parallel_for", 31) + b"".join(op(C0, "stats", r | 8) for r in range(5)) + \
        op(C1, "enqueue", task(T0)) + op(T0, "spawn", 3 | 2 << 2) + \
        b"".join(op(T0, "stats", r) for r in range(5)) + op(C1, "stats", ROOM_ALL)
    s["try-for"] = config2(3) + op(C0, "try_for", 31) + op(C0, "try_for", 31 | 128) + \
        op(C1, "try_for", 17 | 1 << 5 | 128) + op(C1, "try_for", 0 | 128) + \
        op(C1, "try_for", 1 | 128)
    s["try-for-in-task"] = config2(2) + op(C0, "enqueue", task(T0)) + \
        op(T0, "try_for", 25 | 128) + op(T0, "try_for", 12 | 2 << 5) + \
        op(C1, "try_for", 30 | 3 << 5 | 128)
    s["try-for-cancel-shutdown"] = config2(1) + op(C0, "enqueue", task(T0)) + \
        op(C1, "try_for", 20 | 128) + op(C0, "shutdown", 1) + op(T0, "sleep", 63)
    s["reduce-big"] = config2(4) + b"".join(
        op(C0, "reduce_big", 31 | k << 5) for k in range(4)) + b"".join(
        op(C1, "reduce_big", 29 | k << 5 | 128) for k in range(4))
    s["reduce-big-in-task"] = config2(2) + op(C0, "enqueue", task(T0)) + \
        op(T0, "reduce_big", 31 | 3 << 5 | 128) + op(T0, "reduce_big", 7 | 2 << 5) + \
        op(C1, "reduce_big", 0 | 3 << 5)
    s["trace"] = config2(2) + op(C0, "trace", TR_START) + op(C0, "parallel_for", 31) + \
        op(C0, "trace", TR_STOP) + op(C0, "trace", TR_STOP) + op(C1, "trace", TR_TWICE) + \
        op(C1, "trace", TR_CHURN | 20 << 2)
    s["trace-in-task"] = config2(2, 3) + op(C0, "enqueue", task(T0)) + \
        op(T0, "trace", TR_CHURN | 5 << 2) + op(T0, "trace", TR_START) + \
        op(C1, "trace", TR_TWICE) + op(C2, "spawn", 3 | 3 << 2)
    s["trace-shutdown"] = config2(2, 2, 1) + op(C0, "trace", TR_START) + \
        op(C0, "enqueue", task(T0)) + op(C1, "shutdown", 0) + op(C1, "trace", TR_STOP) + \
        op(C1, "trace", TR_START) + op(T0, "sleep", 10)
    s["current"] = config2(3) + op(C0, "current") + op(C0, "enqueue", task(T0)) + \
        op(C0, "wait_nohelp", wait_kind(0, DL_NONE)) + op(T0, "current") + \
        op(T0, "enqueue", task(T1)) + op(T1, "current") + op(C1, "batch", task(T1, extra=3))
    return s


def main():
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")
    os.makedirs(out, exist_ok=True)
    for name, data in sorted(seeds().items()):
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)
    print("%d seeds in %s" % (len(seeds()), out))


if __name__ == "__main__":
    main()
