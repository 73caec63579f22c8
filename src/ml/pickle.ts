// A pickle reader that never runs anything: it knows the opcodes of
// protocols 0-4 that torch.save and fairseq write, and asks its caller what
// each global means. The caller allows a short list (the functions a state
// dict is rebuilt with, OrderedDict) and may stub config objects; any other
// global is refused by name before anything else happens. A GLOBAL is only
// ever looked up here, so `os.system` in a file is an error, not a call.

/** A global the caller allows: what REDUCE / NEWOBJ / BUILD do with it. */
export interface PickleGlobal {
  /** REDUCE (global(*args)) and NEWOBJ (cls.__new__(cls, *args)). */
  call(args: unknown[]): unknown;
}

export interface UnpickleOptions {
  /** Looks up `module.name`; throws (a PickleError naming it) when the global is not allowed. */
  global(module: string, name: string): PickleGlobal;
  /** BINPERSID / PERSID: what the persistent id (torch: a storage tuple) stands for. */
  persistentLoad?(pid: unknown): unknown;
}

export class PickleError extends Error {}

/**
 * An object the pickle builds from a stubbed class (argparse.Namespace,
 * omegaconf.DictConfig, ...): its class name, constructor arguments and the
 * state BUILD gave it, kept as data and never interpreted as code.
 */
export class OpaqueObject {
  state: unknown = undefined;
  readonly items: unknown[] = [];
  constructor(
    readonly cls: string,
    readonly args: unknown[],
  ) {}
}

/** A pickle dict: keys may be ints or tuples, so a Map. */
export type PyDict = Map<unknown, unknown>;

const MARK = Symbol('mark');

/**
 * Python 2 module names that protocol 0-2 pickles written by Python 3 carry
 * (pickle's fix_imports: torch.save writes protocol 2, so `builtins.dict`
 * arrives as `__builtin__.dict`). Mapped back as Python's Unpickler does, so
 * allow-lists and error messages speak of what would really be called.
 */
const PY2_MODULES: Record<string, string> = {
  __builtin__: 'builtins',
  copy_reg: 'copyreg',
  commands: 'subprocess',
  exceptions: 'builtins',
  cPickle: 'pickle',
  UserDict: 'collections',
  UserList: 'collections',
  UserString: 'collections',
  Queue: 'queue',
  sets: 'builtins',
  StringIO: 'io',
  cStringIO: 'io',
  thread: '_thread',
  urllib2: 'urllib.request',
};
const PY2_NAMES: Record<string, string> = {
  '__builtin__.xrange': 'builtins.range',
  '__builtin__.unicode': 'builtins.str',
  '__builtin__.long': 'builtins.int',
  '__builtin__.basestring': 'builtins.str',
  'UserDict.IterableUserDict': 'collections.UserDict',
  'sets.Set': 'builtins.set',
  'sets.ImmutableSet': 'builtins.frozenset',
  '__builtin__.reduce': 'functools.reduce',
  '__builtin__.intern': 'sys.intern',
  '__builtin__.raw_input': 'builtins.input',
};

export function unpickle(buf: Uint8Array, opts: UnpickleOptions): unknown {
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  let pos = 0;
  const stack: unknown[] = [];
  const memo = new Map<number, unknown>();
  const need = (n: number) => {
    if (pos + n > buf.length) throw new PickleError(`pickle truncated: ${n} more bytes needed at offset ${pos} of ${buf.length}`);
  };
  const u8 = () => (need(1), buf[pos++]!);
  const u16 = () => (need(2), (pos += 2), view.getUint16(pos - 2, true));
  const u32 = () => (need(4), (pos += 4), view.getUint32(pos - 4, true));
  const i32 = () => (need(4), (pos += 4), view.getInt32(pos - 4, true));
  const u64 = () => {
    need(8);
    const v = view.getBigUint64(pos, true);
    pos += 8;
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new PickleError(`pickle length ${v} is too large`);
    return Number(v);
  };
  const bytes = (n: number) => {
    need(n);
    pos += n;
    return buf.subarray(pos - n, pos);
  };
  const utf8 = (n: number) => new TextDecoder('utf-8', { fatal: true }).decode(bytes(n));
  const line = () => {
    const end = buf.indexOf(0x0a, pos);
    if (end < 0) throw new PickleError(`pickle truncated: unterminated line at offset ${pos}`);
    const s = new TextDecoder('latin1').decode(buf.subarray(pos, end));
    pos = end + 1;
    return s;
  };
  const pop = () => {
    if (!stack.length) throw new PickleError(`malformed pickle: stack underflow at offset ${pos}`);
    const v = stack.pop();
    if (v === MARK) throw new PickleError(`malformed pickle: unexpected mark at offset ${pos}`);
    return v;
  };
  const top = () => {
    const v = stack[stack.length - 1];
    if (!stack.length || v === MARK) throw new PickleError(`malformed pickle: empty stack at offset ${pos}`);
    return v;
  };
  const popMark = () => {
    const i = stack.lastIndexOf(MARK);
    if (i < 0) throw new PickleError(`malformed pickle: no mark at offset ${pos}`);
    const items = stack.splice(i);
    items.shift();
    return items;
  };
  const memoGet = (i: number) => {
    if (!memo.has(i)) throw new PickleError(`malformed pickle: memo ${i} read before it was written`);
    return memo.get(i);
  };
  let protocol = 0;
  const lookup = (module: string, name: string): PickleGlobal => {
    if (protocol < 3) {
      const renamed = PY2_NAMES[`${module}.${name}`];
      if (renamed) {
        const dot = renamed.lastIndexOf('.');
        return opts.global(renamed.slice(0, dot), renamed.slice(dot + 1));
      }
      module = PY2_MODULES[module] ?? module;
    }
    return opts.global(module, name);
  };
  const asGlobal = (v: unknown): PickleGlobal => {
    if (v && typeof (v as PickleGlobal).call === 'function') return v as PickleGlobal;
    throw new PickleError(`malformed pickle: calls a ${typeof v}, not a global`);
  };
  const setItems = (target: unknown, kv: unknown[]) => {
    if (kv.length % 2) throw new PickleError('malformed pickle: odd number of dict items');
    for (let i = 0; i < kv.length; i += 2) {
      if (target instanceof Map) target.set(kv[i], kv[i + 1]);
      else if (target instanceof OpaqueObject) target.items.push([kv[i], kv[i + 1]]);
      else throw new PickleError('malformed pickle: SETITEM on a non-dict');
    }
  };
  const append = (target: unknown, items: unknown[]) => {
    if (Array.isArray(target)) target.push(...items);
    else if (target instanceof OpaqueObject) target.items.push(...items);
    else throw new PickleError('malformed pickle: APPEND on a non-list');
  };

  for (;;) {
    if (pos >= buf.length) throw new PickleError(`pickle truncated: no STOP after ${buf.length} bytes`);
    const op = buf[pos++]!;
    switch (op) {
      case 0x80: // PROTO
        protocol = u8();
        if (protocol > 5) throw new PickleError(`pickle protocol ${protocol} is newer than 5`);
        break;
      case 0x95: // FRAME: only a length hint
        u64();
        break;
      case 0x2e: // STOP
        return pop();
      case 0x28: // MARK
        stack.push(MARK);
        break;
      case 0x30: // POP
        if (stack[stack.length - 1] === MARK) stack.pop();
        else pop();
        break;
      case 0x31: // POP_MARK
        popMark();
        break;
      case 0x32: // DUP
        stack.push(top());
        break;
      case 0x4e: // NONE
        stack.push(null);
        break;
      case 0x88: // NEWTRUE
        stack.push(true);
        break;
      case 0x89: // NEWFALSE
        stack.push(false);
        break;
      case 0x4a: // BININT
        stack.push(i32());
        break;
      case 0x4b: // BININT1
        stack.push(u8());
        break;
      case 0x4d: // BININT2
        stack.push(u16());
        break;
      case 0x49: {
        // INT (protocol 0; also 00/01 for False/True)
        const s = line().trim();
        stack.push(s === '00' ? false : s === '01' ? true : Number.parseInt(s, 10));
        break;
      }
      case 0x4c: // LONG (protocol 0)
        stack.push(Number.parseInt(line().trim().replace(/L$/, ''), 10));
        break;
      case 0x8a: // LONG1
      case 0x8b: {
        // LONG4
        const n = op === 0x8a ? u8() : u32();
        const b = bytes(n);
        let v = 0n;
        for (let i = n - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]!);
        if (n && b[n - 1]! & 0x80) v -= 1n << BigInt(8 * n);
        stack.push(v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v);
        break;
      }
      case 0x47: // BINFLOAT (big-endian)
        need(8);
        stack.push(view.getFloat64(pos, false));
        pos += 8;
        break;
      case 0x46: // FLOAT (protocol 0)
        stack.push(Number.parseFloat(line()));
        break;
      case 0x58: // BINUNICODE
        stack.push(utf8(u32()));
        break;
      case 0x8c: // SHORT_BINUNICODE
        stack.push(utf8(u8()));
        break;
      case 0x8d: // BINUNICODE8
        stack.push(utf8(u64()));
        break;
      case 0x55: // SHORT_BINSTRING
        stack.push(new TextDecoder('latin1').decode(bytes(u8())));
        break;
      case 0x54: // BINSTRING
        stack.push(new TextDecoder('latin1').decode(bytes(i32())));
        break;
      case 0x42: // BINBYTES
        stack.push(bytes(u32()).slice());
        break;
      case 0x43: // SHORT_BINBYTES
        stack.push(bytes(u8()).slice());
        break;
      case 0x8e: // BINBYTES8
        stack.push(bytes(u64()).slice());
        break;
      case 0x56: // UNICODE (protocol 0, raw-unicode-escape; ASCII is all configs need)
        stack.push(line());
        break;
      case 0x53: {
        // STRING (protocol 0, quoted repr)
        const s = line();
        stack.push(s.slice(1, -1));
        break;
      }
      case 0x29: // EMPTY_TUPLE
        stack.push([]);
        break;
      case 0x85: // TUPLE1
        stack.push([pop()]);
        break;
      case 0x86: {
        // TUPLE2
        const b = pop(),
          a = pop();
        stack.push([a, b]);
        break;
      }
      case 0x87: {
        // TUPLE3
        const c = pop(),
          b = pop(),
          a = pop();
        stack.push([a, b, c]);
        break;
      }
      case 0x74: // TUPLE
        stack.push(popMark());
        break;
      case 0x5d: // EMPTY_LIST
        stack.push([]);
        break;
      case 0x6c: // LIST
        stack.push(popMark());
        break;
      case 0x7d: // EMPTY_DICT
        stack.push(new Map());
        break;
      case 0x64: {
        // DICT
        const d = new Map();
        setItems(d, popMark());
        stack.push(d);
        break;
      }
      case 0x8f: // EMPTY_SET
        stack.push([]);
        break;
      case 0x90: {
        // ADDITEMS
        const items = popMark();
        append(top(), items);
        break;
      }
      case 0x91: // FROZENSET
        stack.push(popMark());
        break;
      case 0x61: {
        // APPEND
        const v = pop();
        append(top(), [v]);
        break;
      }
      case 0x65: {
        // APPENDS
        const items = popMark();
        append(top(), items);
        break;
      }
      case 0x73: {
        // SETITEM
        const v = pop(),
          k = pop();
        setItems(top(), [k, v]);
        break;
      }
      case 0x75: {
        // SETITEMS
        const items = popMark();
        setItems(top(), items);
        break;
      }
      case 0x71: // BINPUT
        memo.set(u8(), top());
        break;
      case 0x72: // LONG_BINPUT
        memo.set(u32(), top());
        break;
      case 0x94: // MEMOIZE
        memo.set(memo.size, top());
        break;
      case 0x70: // PUT
        memo.set(Number.parseInt(line(), 10), top());
        break;
      case 0x68: // BINGET
        stack.push(memoGet(u8()));
        break;
      case 0x6a: // LONG_BINGET
        stack.push(memoGet(u32()));
        break;
      case 0x67: // GET
        stack.push(memoGet(Number.parseInt(line(), 10)));
        break;
      case 0x63: {
        // GLOBAL
        const module = line(),
          name = line();
        stack.push(lookup(module, name));
        break;
      }
      case 0x93: {
        // STACK_GLOBAL
        const name = pop(),
          module = pop();
        if (typeof module !== 'string' || typeof name !== 'string') throw new PickleError('malformed pickle: STACK_GLOBAL without two strings');
        stack.push(lookup(module, name));
        break;
      }
      case 0x52: {
        // REDUCE
        const args = pop(),
          fn = pop();
        if (!Array.isArray(args)) throw new PickleError('malformed pickle: REDUCE arguments are not a tuple');
        stack.push(asGlobal(fn).call(args));
        break;
      }
      case 0x81: {
        // NEWOBJ
        const args = pop(),
          cls = pop();
        if (!Array.isArray(args)) throw new PickleError('malformed pickle: NEWOBJ arguments are not a tuple');
        stack.push(asGlobal(cls).call(args));
        break;
      }
      case 0x92: {
        // NEWOBJ_EX
        pop(); // kwargs: stubs keep no constructor keywords
        const args = pop(),
          cls = pop();
        if (!Array.isArray(args)) throw new PickleError('malformed pickle: NEWOBJ_EX arguments are not a tuple');
        stack.push(asGlobal(cls).call(args));
        break;
      }
      case 0x69: {
        // INST
        const module = line(),
          name = line();
        const g = lookup(module, name);
        stack.push(g.call(popMark()));
        break;
      }
      case 0x6f: {
        // OBJ
        const items = popMark();
        const cls = items.shift();
        stack.push(asGlobal(cls).call(items));
        break;
      }
      case 0x62: {
        // BUILD
        const state = pop();
        const obj = top();
        if (obj instanceof OpaqueObject) obj.state = state;
        // A dict or OrderedDict with instance attributes (a state dict's `_metadata`): nothing a tensor needs.
        else if (!(obj instanceof Map) && !Array.isArray(obj) && !(obj && typeof obj === 'object'))
          throw new PickleError('malformed pickle: BUILD on a plain value');
        break;
      }
      case 0x51: {
        // BINPERSID
        if (!opts.persistentLoad) throw new PickleError('pickle refers to persistent objects, which this file type does not have');
        stack.push(opts.persistentLoad(pop()));
        break;
      }
      case 0x50: // PERSID
        if (!opts.persistentLoad) throw new PickleError('pickle refers to persistent objects, which this file type does not have');
        stack.push(opts.persistentLoad(line()));
        break;
      case 0x82:
      case 0x83:
      case 0x84: // EXT1/2/4: the copyreg extension registry names globals indirectly
        throw new PickleError('pickle uses the copyreg extension registry (EXT opcodes), which is refused: it names globals that cannot be checked');
      default:
        throw new PickleError(`unsupported pickle opcode 0x${op.toString(16).padStart(2, '0')} at offset ${pos - 1}`);
    }
  }
}
