# goro-gdb.py - goro's goroutines in gdb, for live processes and core files.
#
# gdb loads this file by itself when it loads libgoro (or a program linked
# with libgoro.a): the library names it in its .debug_gdb_scripts section.
# If your auto-load safe-path does not cover it, add to ~/.config/gdb/gdbinit:
#     add-auto-load-safe-path /usr/local/share/goro/gdb/goro-gdb.py
# or load it by hand: (gdb) source /usr/local/share/goro/gdb/goro-gdb.py
#
# Commands (docs/observability.md has a transcript):
#   info goroutines [-s STATE] [-f REGEX]   (also: goro list ...)
#       one line per goroutine: id, state (Go's words), minutes waited, name
#       and labels, top frame: the first frame goro's traces show, and when
#       that is the goro call the goroutine waits in (goro_sleep, as Go shows
#       time.Sleep), the caller too: "goro_sleep (g.c:442) from napper
#       (app.c:12)". -s keeps states containing STATE, -f goroutines with a
#       function in that column matching REGEX.
#   goroutine N              show goroutine N's stack as gdb frames: bt, frame,
#                            up, info locals and print then work on it
#   goroutine N CMD...       run one gdb command with goroutine N selected
#   goroutine all CMD...     the same for every goroutine (e.g. `goroutine all bt`)
#   goroutine none           back to the threads' own stacks
#   goro dump                every goroutine as goro_profile_write(stdout, 2) prints it
#
# The frames the list and the dump show follow goro's own traces
# (src/observe/frames.c, apiframes.c): goro's internal frames never show; a
# blocked goroutine shows the goro call it waits in on top when goro's
# traces show that call (rebuilt from its wait reason when the compiler
# turned the call into a jump); the start function is always the bottom
# frame; `created by` falls back to the creating goroutine's start function.
#
# It only reads memory: nothing runs in the inferior and no register is
# written. A parked goroutine's stack is shown through a frame unwinder:
# while a goroutine is selected, frame #0 of the selected thread (the "host")
# unwinds to the registers goro__ctx_switch saved on the goroutine's stack,
# so the goroutine's frames are #1 and up (bt leaves out #0). The same works
# on a core file, whose registers cannot be written. A goroutine that is
# running (or a plain thread waiting in goro) is shown on its own thread.
#
# What this reads about goro's records comes from the layout tables in the
# library (src/runtime/gdb_tables.h); LAYOUT_NAMES below is every name it
# needs, and tests/test_gdb.c checks the library provides each of them.

import os
import re
import struct
import time

import gdb
import gdb.unwinder
from gdb.unwinder import Unwinder

# layout-names-begin
LAYOUT_NAMES = (
    "version", "ptr_size", "g.size", "g.ctx_sp", "g.id", "g.parent_id", "g.status",
    "g.is_thread", "g.is_g0", "g.system", "g.waitsince", "g.waitreason", "g.fn", "g.gopc",
    "g.name", "g.labels", "g.m", "g.tid", "g.stack_lo", "g.stack_hi",
    "labels.n", "labels.kv", "labels.kv_size", "m.tid",
    "status.idle", "status.runnable", "status.running", "status.syscall", "status.waiting",
    "status.dead", "status.scan", "ctx.frame_size", "ctx.pc", "entry", "srcfile",
    "allgs.codes", "allgs.groups", "allgs.len", "allgs.codes_per_chunk", "allgs.group_slots",
    "allgs.groups_per_chunk", "allgs.group_size", "allgs.group_first", "allgs.group_stride",
    "waitreasons", "waitreasons.n",
    "g.wake", "g.park_deadline", "g.waiting", "waiter.c", "waiter.waitlink", "chan.closed",
    "chan.refs", "chan.nheld", "chan.holders", "wait.chan_send", "wait.chan_recv", "wait.select",
    "wait.chan_send_nil", "wait.chan_recv_nil", "wait.select_no_cases",
    "g.parent_fn", "apicalls", "apicalls.size", "apicalls.name", "apicalls.fn", "apicalls.reason",
)
# layout-names-end
LAYOUT_VERSION = 1
TABLES = ("goro__gdb_layout", "goro__gdb_allgs", "goro__gdb_status")

OUTER_NAMES = frozenset(("_start", "__libc_start_main", "__libc_start_call_main", "start_thread",
                         "clone", "clone3", "__clone", "__clone3", "__clone_internal"))
LIBC_PREFIXES = ("libc.so", "libc-", "ld-linux", "libpthread", "ld64.so")
K_USER, K_INTERNAL, K_LIBC, K_UNKNOWN, K_OUTER = range(5)


class GoroError(gdb.GdbError):
    pass


# ------------------------------------------------------------ memory

def _inferior():
    return gdb.selected_inferior()


def read(addr, n):
    try:
        return bytes(_inferior().read_memory(addr, n))
    except gdb.MemoryError as e:
        raise GoroError("goro: cannot read %d bytes at 0x%x: %s" % (n, addr, e))


def read_u64(addr):
    return struct.unpack("<Q", read(addr, 8))[0]


def read_cstr(addr, limit=4096):
    if not addr:
        return None
    out = b""
    while len(out) < limit:
        try:
            chunk = bytes(_inferior().read_memory(addr + len(out), 64))
        except gdb.MemoryError:  # the string may end just before unmapped memory
            try:
                chunk = bytes(_inferior().read_memory(addr + len(out), 1))
            except gdb.MemoryError:
                break
        nul = chunk.find(b"\0")
        if nul >= 0:
            return (out + chunk[:nul]).decode("utf-8", "replace")
        out += chunk
    return out.decode("utf-8", "replace")


def symbol_address(name):
    try:
        return int(gdb.parse_and_eval("&'%s'" % name).cast(gdb.lookup_type("long")))
    except (gdb.error, RuntimeError):
        return None


def is_core():
    inf = _inferior()
    conn = getattr(inf, "connection", None)
    if conn is not None:
        return conn.type == "core"
    return gdb.selected_inferior().pid != 0 and "core" in gdb.execute("info target", to_string=True)


# ------------------------------------------------------------ layout

class Layout(object):
    """goro's tables, read from the inferior once per program/core."""

    def __init__(self):
        v = {}
        for table in TABLES:
            addr = symbol_address(table)
            if addr is None:
                raise GoroError("goro: no %s in this program: is it linked with libgoro, "
                                "and is the library loaded yet (start or attach first)?" % table)
            while True:
                name_ptr, value = struct.unpack("<QQ", read(addr, 16))
                if not name_ptr:
                    break
                v[read_cstr(name_ptr, 128)] = value
                addr += 16
        missing = [n for n in LAYOUT_NAMES if n not in v]
        if missing:
            raise GoroError("goro: this goro-gdb.py does not match the library "
                            "(no %s in its layout table)" % ", ".join(missing))
        if v["version"] != LAYOUT_VERSION:
            raise GoroError("goro: layout version %d, this goro-gdb.py reads %d"
                            % (v["version"], LAYOUT_VERSION))
        self.v = v
        self.regs = dict((k[len("ctx.reg."):], off) for k, off in v.items()
                         if k.startswith("ctx.reg."))
        src = read_cstr(v["srcfile"]) or ""
        # srcfile is <src>/runtime/g.c
        self.srcdir = os.path.dirname(os.path.dirname(src)) + "/" if src else None
        self.reasons = []
        for i in range(v["waitreasons.n"]):
            self.reasons.append(read_cstr(read_u64(v["waitreasons"] + 8 * i)) or "")
        self.api_names, self.api_by_reason = set(), {}
        size = v["apicalls.size"]
        for i in range(256):
            rec = read(v["apicalls"] + i * size, size)
            name_ptr, fn = (struct.unpack_from("<Q", rec, v["apicalls." + k])[0]
                            for k in ("name", "fn"))
            if not name_ptr:
                break
            reason = struct.unpack_from("<i", rec, v["apicalls.reason"])[0]
            self.api_names.add(read_cstr(name_ptr, 128))
            if reason >= 0:
                self.api_by_reason.setdefault(reason, fn)
        arch = _inferior().architecture().name()
        self.aarch64 = "aarch64" in arch
        self.pc_reg, self.sp_reg = ("pc", "sp") if self.aarch64 else ("rip", "rsp")
        self.fp_reg = "x29" if self.aarch64 else "rbp"
        self.ctx_pc, self.ctx_fp, self.entry = v["ctx.pc"], self.regs[self.fp_reg], v["entry"]
        st = {}
        for k in ("idle", "runnable", "running", "syscall", "waiting", "dead"):
            st[v["status." + k]] = k
        self.status_names = st
        # One unpack per record: (attribute, struct code, offset), by offset.
        fields = sorted([("id", "Q", v["g.id"]), ("parent_id", "Q", v["g.parent_id"]),
                         ("status", "I", v["g.status"]), ("is_thread", "B", v["g.is_thread"]),
                         ("is_g0", "B", v["g.is_g0"]), ("system", "B", v["g.system"]),
                         ("waitsince", "q", v["g.waitsince"]), ("reason", "B", v["g.waitreason"]),
                         ("fn", "Q", v["g.fn"]), ("gopc", "Q", v["g.gopc"]),
                         ("parent_fn", "Q", v["g.parent_fn"]),
                         ("name_ptr", "Q", v["g.name"]), ("labels_ptr", "Q", v["g.labels"]),
                         ("m", "Q", v["g.m"]), ("tid", "i", v["g.tid"]),
                         ("stack_lo", "Q", v["g.stack_lo"]), ("stack_hi", "Q", v["g.stack_hi"]),
                         ("ctx_sp", "Q", v["g.ctx_sp"]), ("wake", "Q", v["g.wake"]),
                         ("park_deadline", "q", v["g.park_deadline"]),
                         ("waiting", "Q", v["g.waiting"])], key=lambda f: f[2])
        fmt, at = "<", 0
        for _, code, off in fields:
            fmt += "%dx%s" % (off - at, code) if off > at else code
            at = off + struct.calcsize("<" + code)
        self.g_struct = struct.Struct(fmt)
        self.g_attrs = [f[0] for f in fields]
        self.g_read = at

    def __getitem__(self, name):
        return self.v[name]


_layout = None
_pc_cache = {}
_entry_cache = {}  # function entry -> (file, line): entry_source
_top_cache = {}  # a parked goroutine's stack and wait -> its list column: top_frame_text


def layout():
    global _layout
    if _layout is None:
        _layout = Layout()
    return _layout


def _forget(*_):
    global _layout
    _layout = None
    _pc_cache.clear()
    _entry_cache.clear()
    _top_cache.clear()


# ------------------------------------------------------------ records

class G(object):
    """One goroutine record, as read from memory."""
    __slots__ = ("addr", "id", "parent_id", "status", "is_thread", "is_g0", "system",
                 "waitsince", "reason", "fn", "gopc", "parent_fn", "name_ptr", "labels_ptr", "m",
                 "tid", "stack_lo", "stack_hi", "ctx_sp", "wake", "park_deadline", "waiting",
                 "_labels")

    def __init__(self, L, addr, raw):
        self.addr = addr
        for name, val in zip(L.g_attrs, L.g_struct.unpack_from(raw)):
            setattr(self, name, val)
        self.status &= ~L["status.scan"]
        self._labels = None

    def visible(self, L):
        """goro__g_visible."""
        if self.is_g0 or self.system or self.status == L["status.dead"]:
            return False
        if self.is_thread:
            return self.id == 1 or self.status == L["status.waiting"]
        return self.status != L["status.idle"]

    def state(self, L):
        """goro__status_str: Go's word for the state."""
        name = L.status_names.get(self.status, "???")
        if name != "waiting":
            return name
        r = L.reasons[self.reason] if self.reason < len(L.reasons) else ""
        return r or "waiting"

    def on_thread(self, L):
        """The OS thread id that shows this goroutine's stack, or None when
        its stack is parked (saved context)."""
        if self.is_thread:
            return self.tid
        if self.status in (L["status.running"], L["status.syscall"]) and self.m:
            return struct.unpack("<i", read(self.m + L["m.tid"], 4))[0]
        return None

    def not_started(self, L):
        try:
            return read_u64(self.ctx_sp + L["ctx.pc"]) == L["entry"]
        except GoroError:
            return False

    def labels(self, L):
        """goro__effective_labels: pprof labels plus name, sorted by key."""
        if self._labels is None:
            kv = {}
            if self.labels_ptr:
                n = struct.unpack("<i", read(self.labels_ptr + L["labels.n"], 4))[0]
                base = self.labels_ptr + L["labels.kv"]
                for i in range(max(0, min(n, 64))):
                    k, v = struct.unpack("<QQ", read(base + i * L["labels.kv_size"], 16))
                    kv[read_cstr(k, 256)] = read_cstr(v, 1024) or ""
            if self.name_ptr and "name" not in kv:
                kv["name"] = read_cstr(self.name_ptr, 256) or ""
            self._labels = sorted(kv.items())
        return self._labels

    def minutes(self, L, now):
        if self.status not in (L["status.waiting"], L["status.syscall"]):
            return 0
        if self.waitsince <= 0 or now <= self.waitsince:
            return 0
        return (now - self.waitsince) // (60 * 10 ** 9)


def all_gs(visible_only=True):
    """Every goroutine record in allgs order (goro__allg_at)."""
    L = layout()
    n = read_u64(L["allgs.len"])
    per = L["allgs.codes_per_chunk"]
    codes = []
    for c in range((n + per - 1) // per):
        chunk = read_u64(L["allgs.codes"] + 8 * c)
        cnt = min(per, n - c * per)
        codes.extend(struct.unpack("<%dI" % cnt, read(chunk, 4 * cnt)))
    slots = L["allgs.group_slots"]
    gper = L["allgs.groups_per_chunk"]
    gsize = L["allgs.group_size"]
    ngroups = (max(codes) // slots + 1) if codes else 0
    groups = []
    for c in range((ngroups + gper - 1) // gper):
        chunk = read_u64(L["allgs.groups"] + 8 * c)
        cnt = min(gper, ngroups - c * gper)
        raw = read(chunk, gsize * cnt)
        for i in range(cnt):
            groups.append((struct.unpack_from("<Q", raw, i * gsize + L["allgs.group_first"])[0],
                           struct.unpack_from("<Q", raw, i * gsize + L["allgs.group_stride"])[0]))
    size = L.g_read
    for code in codes:
        first, stride = groups[code // slots]
        addr = first + (code % slots) * stride
        try:
            g = G(L, addr, read(addr, size))
        except GoroError:
            continue
        if not visible_only or g.visible(L):
            yield g


def leaked_ids(L, gs):
    """The goroutineleak profile (src/leak/leakprof.c) of a stopped process
    or a core: goroutines waiting, with no deadline, on a nil channel, or on
    channels whose every reference is held by goroutines of the same kind
    (the largest such set). A channel referenced from anywhere else (its
    maker, a retain) may still be used, so its waiters are not leaked."""
    chan_waits = (L["wait.chan_send"], L["wait.chan_recv"], L["wait.select"])
    nil_waits = (L["wait.chan_send_nil"], L["wait.chan_recv_nil"], L["wait.select_no_cases"])
    chans = {}

    def chan(c):
        if c not in chans:
            closed = struct.unpack("<I", read(c + L["chan.closed"], 4))[0]
            refs = struct.unpack("<I", read(c + L["chan.refs"], 4))[0]
            nheld = struct.unpack("<I", read(c + L["chan.nheld"], 4))[0]
            hp = read_u64(c + L["chan.holders"])
            holders = struct.unpack("<%dQ" % nheld, read(hp, 8 * nheld)) if nheld and hp else ()
            chans[c] = None if closed else (refs, nheld, holders)
        return chans[c]

    wsize = max(L["waiter.c"], L["waiter.waitlink"]) + 8
    cands, ids = {}, {}
    for g in gs:
        if (g.is_thread or g.is_g0 or g.system or g.status != L["status.waiting"]
                or g.wake & 3 or g.park_deadline >= 0):
            continue
        if g.reason in nil_waits:
            cands[g.addr] = ()
        elif g.reason in chan_waits:
            cs, w = [], g.waiting
            try:
                while w and len(cs) <= 64:
                    rec = read(w, wsize)
                    c = struct.unpack_from("<Q", rec, L["waiter.c"])[0]
                    if not cs or cs[-1] != c:
                        cs.append(c)
                    w = struct.unpack_from("<Q", rec, L["waiter.waitlink"])[0]
                if w or any(chan(c) is None for c in cs):
                    continue  # too many to follow, or closed: it can run
            except GoroError:
                continue
            cands[g.addr] = cs
        else:
            continue
        ids[g.addr] = g.id
    inside = set(cands)
    changed = True
    while changed:
        changed = False
        for a in list(inside):
            for c in cands[a]:
                refs, nheld, holders = chans[c]
                if refs > nheld or any(h not in inside for h in holders):
                    inside.discard(a)
                    changed = True
                    break
    return set(ids[a] for a in inside)


def find_g(gid):
    for g in all_gs():
        if g.id == gid:
            return g
    raise GoroError("goro: no goroutine %d" % gid)


def now_ns(gs):
    """goro's clock (CLOCK_MONOTONIC) now; on a core file, the latest wait
    start any record holds (so minutes there are lower bounds)."""
    if is_core():
        return max([g.waitsince for g in gs] + [0])
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC)


# ------------------------------------------------------------ symbols

class PcInfo(object):
    """What is at one code address, as symbols.c records it for a PC.
    chain: (function, goro's own) per logical frame, innermost first (inlined
    calls, then the physical function), and syms their gdb symbols (empty
    without debug info); file and line are the innermost's."""
    __slots__ = ("func", "file", "line", "entry", "kind", "chain", "syms", "found", "libc",
                 "outer", "internal", "phys_internal")


def _is_libc(path):
    return bool(path) and os.path.basename(path).startswith(LIBC_PREFIXES)


def _is_outer(name):
    """symbols.c is_outer_name. Static binaries name glibc's start-up
    __libc_start_main_impl and keep __libc_start_call_main local."""
    return bool(name) and (name in OUTER_NAMES or name.startswith("__libc_start"))


def _under_src(L, path):
    return bool(path) and bool(L.srcdir) and path.startswith(L.srcdir)


def _own_name(name):
    return bool(name) and name.startswith("goro_")


def api_public(name):
    """apiframes.c goro__api_public: a public goro call (goro_x, not goro__x)."""
    return bool(name) and name.startswith("goro_") and len(name) > 5 and name[5] != "_"


def _kind(info, internal):
    """frames.c kind_of, for one logical frame of info."""
    if internal:
        return K_INTERNAL
    if info.outer:
        return K_OUTER
    if info.libc:
        return K_LIBC
    if not info.found:
        return K_UNKNOWN
    return K_USER


def pc_info(pc):
    """What is at code address pc (the address itself: pass retpc - 1 for
    a return address): its logical frames, innermost file:line, the physical
    function's entry, and the kinds the hiding rules use (frames.c): a frame
    is goro's own when its function is named goro_*, or its source or its
    function's definition lies under goro's src/, or its physical function
    is goro's (or lies in libgoro.so)."""
    info = _pc_cache.get(pc)
    if info is not None:
        return info
    L = layout()
    info = PcInfo()
    info.file = None
    info.line = info.entry = 0
    try:
        blk = gdb.block_for_pc(pc)
    except RuntimeError:
        blk = None
    chain, info.syms = [], []
    while blk is not None:
        s = blk.function
        if s is not None:
            st = s.symtab
            chain.append([s.name, _own_name(s.name) or
                          (st is not None and _under_src(L, st.fullname()))])
            info.syms.append(s)
        blk = blk.superblock
    symname = None
    if info.syms:
        try:
            info.entry = int(info.syms[-1].value().address)
        except (gdb.error, RuntimeError):
            info.entry = 0
    else:
        try:
            text = gdb.execute("info symbol 0x%x" % pc, to_string=True)
            m = re.match(r"(\S+)(?: \+ (\d+))? in section", text)
            if m:
                symname = m.group(1)
                info.entry = pc - int(m.group(2) or 0)
        except gdb.error:
            pass
        chain = [[symname, _own_name(symname)]]
    sal = gdb.find_pc_line(pc)
    if sal.symtab is not None and sal.line:
        info.file = sal.symtab.fullname()
        info.line = sal.line
        chain[0][1] = chain[0][1] or _under_src(L, info.file)
    solib = gdb.current_progspace().solib_name(pc)
    phys_name = chain[-1][0]
    info.phys_internal = bool(chain[-1][1] or
                              (solib and os.path.basename(solib).startswith("libgoro")))
    info.chain = [(name, bool(own) or info.phys_internal) for name, own in chain]
    info.func = chain[0][0]
    info.found = phys_name is not None
    info.libc = _is_libc(solib)
    info.outer = _is_outer(phys_name) or _is_outer(symname)
    info.internal = info.chain[0][1]
    info.kind = _kind(info, info.internal)
    _pc_cache[pc] = info
    return info


def top_index(kinds):
    """frames.c rule 1: the first frame after the leading run of goro, libc
    and unknown frames that ends with a goro frame."""
    last = -1
    for i, k in enumerate(kinds):
        if k == K_INTERNAL:
            last = i
        elif k not in (K_LIBC, K_UNKNOWN):
            break
    return last + 1


def parked_pcs(L, g, max_frames=64):
    """Return addresses of a parked goroutine, innermost first, by its frame
    pointers (goro is built with them); stops at the first frame outside
    goro, whose caller user code may not link by frame pointer. Reads the
    top of the stack once: goro's own frames there take a few hundred bytes."""
    sp = g.ctx_sp
    hi = g.stack_hi if g.stack_hi > sp else sp + 4096
    span = min(hi - sp, 1024)
    words = struct.unpack("<%dQ" % (span // 8), read(sp, span))
    nwords = len(words)

    def word(addr):
        i = (addr - sp) >> 3
        return words[i] if i < nwords else read_u64(addr)

    pc = words[L.ctx_pc >> 3]
    if pc == L.entry:
        return [], []  # not started yet
    pcs, infos = [pc], [pc_info(pc - 1)]
    fp = words[L.ctx_fp >> 3]
    while len(pcs) < max_frames and infos[-1].phys_internal:
        if not (sp < fp < hi - 8) or fp & 7:
            break
        pc = word(fp + 8)
        pcs.append(pc)
        infos.append(pc_info(pc - 1))
        fp = word(fp)
    return pcs, infos


def classify_frames(frames, first_exact):
    """(PcInfo, kind) per gdb frame, innermost first. A frame's pc is a
    return address (looked up at pc - 1) except in the innermost physical
    frame of a thread and in one a signal interrupted; a signal trampoline
    is hidden like goro's own frames (frames.c)."""
    out = []
    exact = first_exact
    for f in frames:
        t = f.type()
        info = pc_info(f.pc() if exact else f.pc() - 1)
        out.append((info, K_INTERNAL if t == gdb.SIGTRAMP_FRAME else info.kind))
        if t != gdb.INLINE_FRAME:
            exact = t == gdb.SIGTRAMP_FRAME
    return out


# ------------------------------------------------------------ the frames a trace shows

class Frame(object):
    """One logical frame as the formats print it (frames.c goro__frame):
    entry is its physical function's."""
    __slots__ = ("func", "file", "line", "inlined", "off", "kind", "libc", "entry")

    def __init__(self, info, func, file, line, kind, inlined, off=0):
        self.func, self.file, self.line, self.kind = func, file, line, kind
        self.inlined, self.off = inlined, off
        self.libc, self.entry = info.libc, info.entry


def frames_of(newest, first_exact, limit=1024):
    """(frames, faulted, truncated): the logical frames from gdb frame
    newest outwards, innermost first, through gdb's unwinder. gdb's
    tail-call frames (rebuilt from DWARF call sites) are left out, as goro's
    own walk cannot see them: the rules put back what the user needs (the
    goro call from the wait reason, the start function)."""
    out = []
    faulted = False
    exact, depth = first_exact, 0
    f = newest
    while f is not None and len(out) < limit:
        t = f.type()
        if t == gdb.TAILCALL_FRAME:
            f = f.older()
            continue
        pc = f.pc()
        info = pc_info(pc if exact else pc - 1)
        name, internal = info.chain[min(depth, len(info.chain) - 1)]
        path, line = _sal(f)
        inlined = t == gdb.INLINE_FRAME
        if t == gdb.SIGTRAMP_FRAME:
            kind, faulted = K_INTERNAL, True
        else:
            kind = _kind(info, internal)
        off = pc - info.entry if not inlined and info.entry and pc > info.entry else 0
        out.append(Frame(info, f.name() or name, path, line, kind, inlined, off))
        if inlined:
            depth += 1
        else:
            depth, exact = 0, t == gdb.SIGTRAMP_FRAME
        f = f.older()
    return out, faulted, f is not None


def parked_frames(pcs, infos):
    """The logical frames of what parked_pcs found (its walk ends at the
    first frame that is not goro's: enough for the top frames, not for a
    dump). A caller of an inlined call is at that call's line: the line gdb
    gives the inlined function's symbol (DW_AT_call_line)."""
    out = []
    for pc, info in zip(pcs, infos):
        last = len(info.chain) - 1
        for depth, (name, internal) in enumerate(info.chain):
            file, line = info.file, info.line
            if depth:
                call = info.syms[depth - 1]
                file = call.symtab.fullname() if call.symtab is not None else None
                line = call.line
            off = pc - info.entry if depth == last and info.entry and pc > info.entry else 0
            out.append(Frame(info, name, file, line, _kind(info, internal), depth < last, off))
    return out


def entry_source(fn, inner=False):
    """(file, line) goro's symbolizer gives function fn at its entry: the
    last line-table row at that address (libdw's choice; gdb's find_pc_line
    takes the last statement row), or, when a call is inlined right at the
    entry, that call's line (its symbol's line: gdb gives an inlined
    function's symbol the DW_AT_call_line). inner: for the innermost logical
    frame there (its row) instead of the function's own."""
    key = (fn, inner)
    if key in _entry_cache:
        return _entry_cache[key]
    info = pc_info(fn)
    out = (info.file, info.line)
    if not inner and len(info.syms) > 1:
        call = info.syms[-2]
        if call.symtab is not None:
            out = (call.symtab.fullname(), call.line)
    else:
        sal = gdb.find_pc_line(fn)
        if sal.symtab is not None:
            rows = [e.line for e in sal.symtab.linetable() if e.pc == fn]
            if rows:
                out = (sal.symtab.fullname(), rows[-1])
    _entry_cache[key] = out
    return out


def synth_frame(fn):
    """A function that is not on the stack, at its entry (frames.c synth)."""
    info = pc_info(fn)
    file, line = entry_source(fn)
    return Frame(info, info.chain[-1][0], file, line, K_USER, False)


def shown_frames(L, g, frames, faulted, truncated):
    """frames.c goro__frames_build: the frames a trace of g prints, from its
    logical frames (innermost first). Rules 1-3 hide goro's frames; rule 4
    shows the goro call a blocked goroutine waits in (the outermost public
    goro_* frame of the hidden top run, when apiframes.c shows that call, or
    the call its wait reason implies when the compiler removed the frame);
    rule 5 puts the start function at the bottom; rule 6: if nothing is
    left, every frame that is not goro's."""
    n = len(frames)
    kinds = [f.kind for f in frames]
    last_internal = top_index(kinds) - 1
    shown = [i > last_internal and kinds[i] != K_INTERNAL for i in range(n)]
    for i in range(n - 1, last_internal, -1):
        if kinds[i] == K_USER:
            break
        shown[i] = False
    blocked = g.status == L["status.waiting"]
    top = None
    for i in range(last_internal, -1, -1):
        name = frames[i].func
        if not api_public(name):
            continue
        if (blocked and name in L.api_names) or faulted:
            shown[i] = True
        break
    else:
        fn = L.api_by_reason.get(g.reason) if blocked else None
        if fn:
            top = synth_frame(fn)
    last = max([i for i in range(n) if shown[i]] or [-1])
    bottom = None
    start_fn = 0 if g.is_thread else g.fn
    if start_fn and not truncated and (last < 0 or frames[last].entry != start_fn):
        f = synth_frame(start_fn)
        if not pc_info(start_fn).phys_internal or (last < 0 and top is None):
            bottom = f
    out = [f for f, s in zip(frames, shown) if s]
    if top is None and bottom is None and not out:
        out = [f for f in frames if f.kind != K_INTERNAL]
    return ([top] if top else []) + out + ([bottom] if bottom else [])


def source_of(f):
    """(file, line) a trace prints for f: the C library's own sources (its
    .S stubs, paths relative to its build tree) are (None, 0), as without
    debug info (text.c libc_source_hidden: panicparse takes only absolute
    .c paths)."""
    if f.libc and f.file and not (f.file.startswith("/") and f.file.endswith(".c")):
        return None, 0
    return f.file, f.line or 0


def fmt_where(f):
    """`func (file.c:42)` for the list's top-frame column."""
    file, line = source_of(f)
    if file:
        return "%s (%s:%d)" % (f.func or "??", os.path.basename(file), line)
    return f.func or "??"


# ------------------------------------------------------------ threads

def thread_for_lwp(lwp):
    for t in _inferior().threads():
        if t.ptid[1] == lwp or (t.ptid[1] == 0 and t.ptid[0] == lwp):
            return t
    return None


def thread_frames(thread, limit=256):
    """An OS thread's own logical frames (no goroutine view), as frames_of
    returns them."""
    with Selection():
        view.release()
        thread.switch()
        return frames_of(gdb.newest_frame(), True, limit)


def _sal(fr):
    sal = fr.find_sal()
    if sal.symtab is not None and sal.line:
        return (sal.symtab.fullname(), sal.line)
    return (None, 0)


# ------------------------------------------------------------ the goroutine view

class View(object):
    """The selected goroutine: which thread hosts it and its saved context."""

    def __init__(self):
        self.g = None
        self.host = None
        self.regs = None
        self.level = 0  # the host's frame that unwinds to the goroutine
        self.home = None  # the thread selected before (`goroutine none` returns to it)

    def select(self, g):
        L = layout()
        sp = g.ctx_sp
        frame = read(sp, L["ctx.frame_size"])
        regs = {}
        for name, off in L.regs.items():
            regs[name] = struct.unpack_from("<Q", frame, off)[0]
        regs[L.pc_reg] = struct.unpack_from("<Q", frame, L["ctx.pc"])[0]
        regs[L.sp_reg] = sp + L["ctx.frame_size"]
        if self.g is None:
            self.home = gdb.selected_thread()
        self.release()
        self.host, self.level = pick_host()
        self.g = g
        self.regs = regs
        gdb.invalidate_cached_frames()

    def release(self):
        if self.g is not None:
            self.g = self.host = self.regs = None
            gdb.invalidate_cached_frames()

    def active_here(self):
        if self.g is None or self.host is None:
            return False
        t = gdb.selected_thread()
        return t is not None and self.host.is_valid() and t.ptid == self.host.ptid


view = View()


def _inline_depth(thread):
    """How many inline frames sit on top of thread's innermost real frame:
    gdb's inline unwinder claims those before any Python unwinder."""
    thread.switch()
    f, depth = gdb.newest_frame(), 0
    while f is not None and f.type() == gdb.INLINE_FRAME:
        f, depth = f.older(), depth + 1
    return depth


def pick_host():
    """The thread that shows a parked goroutine: the selected one unless its
    frame #0 is an inlined call (then its real frame would be #1 or more),
    when a thread without one is preferred (goroutine frames then start at
    #1 everywhere). Leaves that thread selected."""
    cur = gdb.selected_thread()
    if cur is None:
        raise GoroError("goro: no thread to show the goroutine on")
    best = (cur, _inline_depth(cur))
    if best[1]:
        for t in _inferior().threads():
            d = _inline_depth(t)
            if d == 0:
                best = (t, 0)
                break
    best[0].switch()
    return best


class _FrameId(object):
    def __init__(self, sp, pc):
        self.sp = sp
        self.pc = pc


class GoroutineUnwinder(Unwinder):
    """Frame #0 of the host thread unwinds to the selected goroutine."""

    def __init__(self):
        super(GoroutineUnwinder, self).__init__("goro-goroutine")

    def __call__(self, pending):
        if pending.level() != view.level or not view.active_here():
            return None
        L = layout()
        pc = pending.read_register(L.pc_reg)
        sp = pending.read_register(L.sp_reg)
        # Frame #0's id sits just below the goroutine's saved context, so
        # gdb sees the goroutine's frames as outer to it (stacks grow down).
        info = pending.create_unwind_info(_FrameId(gdb.Value(view.g.ctx_sp).cast(sp.type), pc))
        for name, value in view.regs.items():
            if name == L.sp_reg:
                info.add_saved_register(name, gdb.Value(value).cast(sp.type))
            elif name == L.pc_reg:
                info.add_saved_register(name, gdb.Value(value).cast(pc.type))
            else:
                reg = pending.read_register(name)
                info.add_saved_register(name, gdb.Value(value).cast(reg.type))
        return info


class HideHostFrame(object):
    """bt of a selected goroutine starts at its own frames (#1)."""

    def __init__(self):
        self.name = "goro-goroutine"
        self.priority = 100
        self.enabled = True

    def filter(self, frames):
        if not view.active_here():
            return frames
        return (f for f in frames if f.inferior_frame().level() > view.level)


class Selection(object):
    """Saves and restores the selected thread, frame and goroutine view."""

    def __enter__(self):
        self.thread = gdb.selected_thread()
        self.saved = (view.g, view.host, view.regs, view.level, view.home)
        try:
            self.level = gdb.selected_frame().level()
        except gdb.error:
            self.level = None
        return self

    def __exit__(self, *exc):
        if self.thread is not None and self.thread.is_valid():
            self.thread.switch()
        view.g, view.host, view.regs, view.level, view.home = self.saved
        gdb.invalidate_cached_frames()
        if self.level is not None:
            try:
                f = gdb.newest_frame()
                while f is not None and f.level() < self.level:
                    f = f.older()
                if f is not None:
                    f.select()
            except gdb.error:
                pass
        return False


def goroutine_newest_frame():
    """The selected goroutine's innermost frame (the host's frames are
    newer)."""
    f = gdb.newest_frame()
    while f is not None and f.level() <= view.level:
        f = f.older()
    return f


def select_goroutine(g, quiet=False):
    """Makes g's stack the selected thread's frames (or switches to the
    thread it runs on) and selects its top user frame."""
    L = layout()
    lwp = g.on_thread(L)
    if lwp is not None:
        t = thread_for_lwp(lwp)
        if t is None:
            raise GoroError("goro: goroutine %d runs on thread %d, which gdb does not list"
                            % (g.id, lwp))
        view.release()
        t.switch()
        first = gdb.newest_frame()
        exact0 = True
    else:
        if g.not_started(L):
            raise GoroError("goro: goroutine %d has not started yet; it will run %s"
                            % (g.id, pc_info(g.fn).func or "0x%x" % g.fn))
        view.select(g)
        first = goroutine_newest_frame()
        exact0 = False
    frames = []
    f = first
    while f is not None and len(frames) < 64:
        frames.append(f)
        f = f.older()
    kinds = [kind for _, kind in classify_frames(frames, exact0)]
    i = top_index(kinds)
    target = frames[i] if i < len(frames) else first
    if target is not None:
        target.select()
    if not quiet:
        gdb.write("[Switching to goroutine %d (%s)]\n" % (g.id, g.state(L)))
        gdb.execute("frame", to_string=False)


# ------------------------------------------------------------ commands

def parse_id(arg):
    try:
        return int(arg, 0)
    except ValueError:
        raise GoroError("goro: goroutine id expected, got %r" % arg)


def top_frame_text(L, g):
    """The list's top-frame column: the first frame a trace of g shows and,
    when that is the goro call g waits in, the caller too (as Go shows
    time.Sleep above the user's frame). Returns (text, function names)."""
    lwp = g.on_thread(L)
    if lwp is not None:
        t = thread_for_lwp(lwp)
        if t is None:
            return "(thread %d not found)" % lwp, []
        return _top_text(L, g, *thread_frames(t))
    pcs, infos = parked_pcs(L, g)
    # What the rules read of g besides its stack; many goroutines share all.
    key = (tuple(pcs), g.status == L["status.waiting"], g.reason, g.fn, g.is_thread)
    top = _top_cache.get(key)
    if top is None:
        top = _top_text(L, g, parked_frames(pcs, infos), False, False, parked=True)
        _top_cache[key] = top
    return top


def _top_text(L, g, frames, faulted, truncated, parked=False):
    shown = shown_frames(L, g, frames, faulted, truncated)
    head = shown[:2] if shown and api_public(shown[0].func) else shown[:1]
    suffix = " (not started)" if parked and not frames else ""
    return " from ".join(fmt_where(f) for f in head) + suffix, [f.func or "??" for f in head]


def labels_text(g, L):
    return " ".join("%s=%s" % kv for kv in g.labels(L))


class InfoGoroutines(gdb.Command):
    """List goro's goroutines: info goroutines [-s STATE] [-f FUNC-REGEX]

Columns: id, state (Go's words; a substring of it for -s), minutes
waited, name and pprof labels, top frame: the first frame goro's traces
show, and when that is the goro call the goroutine waits in, its caller
("goro_sleep (g.c:442) from napper (app.c:12)"); -f keeps goroutines with
a function there matching the regex. `*` marks the goroutine selected
with `goroutine N` or running on the selected thread."""

    def __init__(self, name="info goroutines"):
        super(InfoGoroutines, self).__init__(name, gdb.COMMAND_STACK)

    def invoke(self, arg, from_tty):
        run_list(arg)


def run_list(arg):
    argv = gdb.string_to_argv(arg)
    state_f = func_f = None
    i = 0
    while i < len(argv):
        if argv[i] == "-s" and i + 1 < len(argv):
            state_f = argv[i + 1]
            i += 2
        elif argv[i] == "-f" and i + 1 < len(argv):
            func_f = re.compile(argv[i + 1])
            i += 2
        else:
            raise GoroError("usage: info goroutines [-s STATE] [-f FUNC-REGEX]")
    L = layout()
    gs = list(all_gs())
    now = now_ns(gs)
    cur_lwp = gdb.selected_thread().ptid[1] if gdb.selected_thread() else None
    leaked = leaked_ids(L, gs)
    rows = []
    for g in gs:
        state = g.state(L) + (" (leaked)" if g.id in leaked else "")
        if state_f and state_f not in state:
            continue
        top, funcs = top_frame_text(L, g)
        if func_f and not any(func_f.search(f) for f in funcs):
            continue
        mins = g.minutes(L, now)
        if view.g is not None:
            mark = "*" if g.id == view.g.id else " "
        else:
            mark = "*" if cur_lwp and g.on_thread(L) == cur_lwp else " "
        rows.append((mark, str(g.id), state, "%dm" % mins if mins else "", labels_text(g, L),
                     top))
    w_id = max([len(r[1]) for r in rows] + [2])
    w_st = max([len(r[2]) for r in rows] + [5])
    w_lb = max([len(r[4]) for r in rows] + [6])
    out = ["  %-*s %-*s %5s  %-*s  %s\n" % (w_id, "Id", w_st, "State", "Wait", w_lb, "Labels",
                                           "Top frame")]
    for r in rows:
        out.append("%s %-*s %-*s %5s  %-*s  %s\n" % (r[0], w_id, r[1], w_st, r[2], r[3], w_lb,
                                                    r[4], r[5]))
    out.append("%d goroutines%s\n" % (len(rows), "" if len(rows) == len(gs)
                                      else " shown of %d" % len(gs)))
    gdb.write("".join(out))


class GoroutineCmd(gdb.Command):
    """Select a goroutine's stack, or run a command on it.

goroutine N          select goroutine N: bt, frame N, up, info locals and
                     print then show its stack (frame #0, the host thread's
                     own frame, is left out of bt)
goroutine N CMD      run CMD with goroutine N selected, then come back
goroutine all CMD    run CMD for every goroutine (e.g. goroutine all bt)
goroutine none       back to the threads' own stacks
goroutine            which goroutine is selected"""

    def __init__(self):
        super(GoroutineCmd, self).__init__("goroutine", gdb.COMMAND_STACK)

    def invoke(self, arg, from_tty):
        arg = arg.strip()
        if not arg:
            if view.g is None:
                gdb.write("No goroutine selected (goroutine N selects one).\n")
            else:
                gdb.write("Goroutine %d, shown on thread %d.\n"
                          % (view.g.id, view.host.num))
            return
        head, _, cmd = arg.partition(" ")
        cmd = cmd.strip()
        if head == "none":
            home = view.home
            view.release()
            if home is not None and home.is_valid():
                home.switch()
            return
        if head == "all":
            if not cmd:
                raise GoroError("usage: goroutine all CMD")
            L = layout()
            for g in all_gs():
                gdb.write("\ngoroutine %d [%s]:\n" % (g.id, g.state(L)))
                try:
                    with Selection():
                        select_goroutine(g, quiet=True)
                        gdb.execute(cmd, from_tty)
                except gdb.error as e:
                    gdb.write("%s\n" % e)
            return
        g = find_g(parse_id(head))
        if not cmd:
            select_goroutine(g)
            return
        with Selection():
            select_goroutine(g, quiet=True)
            gdb.execute(cmd, from_tty)


class GoroPrefix(gdb.Command):
    """goro's goroutines: goro list, goro dump (see also: goroutine)."""

    def __init__(self):
        super(GoroPrefix, self).__init__("goro", gdb.COMMAND_STACK, gdb.COMPLETE_NONE, True)


class GoroList(gdb.Command):
    """Same as info goroutines: goro list [-s STATE] [-f FUNC-REGEX]"""

    def __init__(self):
        super(GoroList, self).__init__("goro list", gdb.COMMAND_STACK)

    def invoke(self, arg, from_tty):
        run_list(arg)


# ------------------------------------------------------------ goro dump

INNER_FRAMES = OUTER_FRAMES = 50


def logical_frames(L, g):
    """frames_of for goroutine g, through its own thread or the goroutine
    view."""
    with Selection():
        select_goroutine(g, quiet=True)
        lwp = g.on_thread(L)
        f = gdb.newest_frame() if lwp is not None else goroutine_newest_frame()
        return frames_of(f, lwp is not None)


def put_frame(out, f):
    """text.c put_frame."""
    file, line = source_of(f)
    out.append("%s%s\n\t%s:%d" % (f.func or "??", "(...)" if f.inlined else "()", file or "??",
                                 line))
    if not f.inlined and f.off:
        out.append(" +0x%x" % f.off)
    out.append("\n")


def put_created_by(out, L, g):
    """text.c put_created_by: the goro_go call's place; when that is goro's
    own code (a creator whose last statement was goro_go, compiled to a
    jump) or start-up code, the creating goroutine's start function."""
    if g.id == 1 or g.gopc < 2:
        return
    pc = g.gopc
    info = pc_info(pc - 1)
    file, line = info.file, info.line
    if (info.internal or info.outer) and g.parent_fn:
        pc = g.parent_fn + 1
        info = pc_info(pc - 1)
        file, line = entry_source(g.parent_fn, inner=True)
    if info.internal or info.outer:
        return
    out.append("created by %s" % (info.func or "??"))
    if g.parent_id:
        out.append(" in goroutine %d" % g.parent_id)
    out.append("\n\t%s:%d" % (file or "??", line))
    if info.entry and pc > info.entry + 1:
        out.append(" +0x%x" % (pc - info.entry))
    out.append("\n")


def dump_goroutine(L, g, now):
    out = ["goroutine %d [%s" % (g.id, g.state(L))]
    mins = g.minutes(L, now)
    if mins >= 1:
        out.append(", %d minutes" % mins)
    out.append("]:\n")
    if g.on_thread(L) is None and g.not_started(L):
        frames, faulted, truncated = [], False, False
    else:
        frames, faulted, truncated = logical_frames(L, g)
    shown = shown_frames(L, g, frames, faulted, truncated)
    n = len(shown)
    for i, f in enumerate(shown):
        if n > INNER_FRAMES + OUTER_FRAMES and INNER_FRAMES <= i < n - OUTER_FRAMES:
            if i == INNER_FRAMES:
                out.append("...%d frames elided...\n" % (n - INNER_FRAMES - OUTER_FRAMES))
            continue
        put_frame(out, f)
    put_created_by(out, L, g)
    return "".join(out)


class GoroDump(gdb.Command):
    """Every goroutine in Go's debug=2 format, as goro_profile_write(f, 2) prints it."""

    def __init__(self):
        super(GoroDump, self).__init__("goro dump", gdb.COMMAND_STACK)

    def invoke(self, arg, from_tty):
        L = layout()
        gs = list(all_gs())
        now = now_ns(gs)
        blocks = []
        for g in gs:
            try:
                blocks.append(dump_goroutine(L, g, now))
            except gdb.error as e:
                blocks.append("goroutine %d [%s]:\n\t(%s)\n" % (g.id, g.state(L), e))
        gdb.write("\n".join(blocks))


# ------------------------------------------------------------ registration

def _on_run_state_change(*_):
    view.release()


def _register():
    gdb.unwinder.register_unwinder(None, GoroutineUnwinder(), replace=True)
    gdb.frame_filters["goro-goroutine"] = HideHostFrame()
    InfoGoroutines()
    GoroutineCmd()
    GoroPrefix()
    GoroList()
    GoroDump()
    gdb.events.cont.connect(_on_run_state_change)
    gdb.events.exited.connect(_on_run_state_change)
    gdb.events.exited.connect(_forget)
    gdb.events.new_objfile.connect(_forget)
    gdb.events.clear_objfiles.connect(_forget)


# Loaded once per gdb session even when several objfiles name this file.
if not getattr(gdb, "_goro_gdb_loaded", False):
    gdb._goro_gdb_loaded = True
    _register()
