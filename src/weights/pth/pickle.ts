/**
 * A pickle reader that executes nothing. It knows the opcodes of protocols 2–5 (what `torch.save` writes) and
 * builds plain values: dicts as Maps, lists as arrays, tuples as PyTuple, ints as numbers (bigints when too
 * large), strings, bytes as views of the file. Every global, call (REDUCE, NEWOBJ), BUILD and persistent id is
 * handed to the caller's hooks, which decide what the few allowed names become and refuse everything else
 * (./torch-globals.ts); this module never looks a name up anywhere. Every length is checked against the
 * bytes that remain before it is read, so a corrupt pickle fails with a WeightsFileError naming the file.
 */
import { WeightsFileError } from '../../util/errors.js';

/** A Python tuple (kept apart from lists, which are JavaScript arrays). */
export class PyTuple {
  constructor(readonly items: unknown[]) {}
}

/** A Python set or frozenset (their items are never used; kept so that a module's state parses). */
export class PySet {
  readonly items: unknown[] = [];
}

export interface UnpickleHooks {
  /** GLOBAL / STACK_GLOBAL: the value that stands for `module.name`; throws to refuse it. */
  global(module: string, name: string): unknown;
  /** REDUCE and NEWOBJ: what calling `callable` (a value global() returned) with `args` stands for. */
  call(callable: unknown, args: unknown[]): unknown;
  /** BUILD: applies `state` to `target` (or refuses). */
  build(target: unknown, state: unknown): void;
  /** BINPERSID: the object a persistent id stands for (a storage, in torch files). */
  persistentLoad(pid: unknown): unknown;
}

/** Larger integers than any torch.save writes are refused rather than decoded (LONG4 could declare 4 GiB). */
const MAX_LONG_BYTES = 64;
const utf8 = new TextDecoder('utf-8');

/**
 * Reads one pickle starting at `start`. Returns the value and the offset just after its STOP opcode (the
 * legacy torch format puts several pickles one after another).
 */
export function unpickle(bytes: Uint8Array, start: number, file: string, hooks: UnpickleHooks): { value: unknown; end: number } {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const stack: unknown[] = [];
  const marks: number[] = [];
  const memo = new Map<number, unknown>();
  let at = start;
  let opcodeAt = start;

  const fail = (defect: string): never => {
    throw new WeightsFileError(file, `pickle at byte ${opcodeAt}: ${defect}`);
  };
  const need = (n: number, what: string): void => {
    if (n < 0 || at + n > bytes.length) fail(`${what} needs ${n} bytes but only ${bytes.length - at} remain: truncated or corrupt`);
  };
  const u8 = (): number => {
    need(1, 'an argument');
    return bytes[at++]!;
  };
  const u16 = (): number => {
    need(2, 'an argument');
    at += 2;
    return view.getUint16(at - 2, true);
  };
  const u32 = (): number => {
    need(4, 'an argument');
    at += 4;
    return view.getUint32(at - 4, true);
  };
  const u64 = (): number => {
    need(8, 'an argument');
    at += 8;
    const value = view.getBigUint64(at - 8, true);
    if (value > BigInt(bytes.length)) fail(`a length of ${value} bytes, more than the whole file`);
    return Number(value);
  };
  const take = (n: number, what: string): Uint8Array => {
    need(n, what);
    at += n;
    return bytes.subarray(at - n, at);
  };
  const pop = (): unknown => {
    if (stack.length === 0 || (marks.length > 0 && stack.length <= marks[marks.length - 1]!)) fail('pops from an empty stack');
    return stack.pop();
  };
  const top = (): unknown => {
    if (stack.length === 0) fail('reads an empty stack');
    return stack[stack.length - 1];
  };
  const popMark = (): unknown[] => {
    const mark = marks.pop();
    if (mark === undefined) fail('no MARK to pop to');
    return stack.splice(mark!);
  };
  const long = (data: Uint8Array): number | bigint => {
    if (data.length === 0) return 0;
    let value = 0n;
    for (let i = data.length - 1; i >= 0; i--) value = (value << 8n) | BigInt(data[i]!);
    if (data[data.length - 1]! & 0x80) value -= 1n << BigInt(8 * data.length);
    return value >= BigInt(Number.MIN_SAFE_INTEGER) && value <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(value) : value;
  };
  const memoGet = (index: number): unknown => {
    if (!memo.has(index)) fail(`memo entry ${index} was never stored`);
    return memo.get(index);
  };
  const setItems = (target: unknown, items: unknown[]): void => {
    if (!(target instanceof Map)) fail('SETITEM(S) on something that is not a dict');
    if (items.length % 2 !== 0) fail('SETITEMS with an odd number of items');
    for (let i = 0; i < items.length; i += 2) (target as Map<unknown, unknown>).set(items[i], items[i + 1]);
  };
  const append = (target: unknown, items: unknown[]): void => {
    // One by one: spreading a long run of items into push() would overflow the call stack.
    const list = Array.isArray(target) ? target : target instanceof PySet ? target.items : fail('APPEND(S)/ADDITEMS on something that is not a list or set');
    for (const item of items) list.push(item);
  };
  const tupleOf = (value: unknown, what: string): unknown[] => {
    if (!(value instanceof PyTuple)) fail(`${what} arguments are not a tuple`);
    return (value as PyTuple).items;
  };
  const text = (data: Uint8Array): string => utf8.decode(data);
  const line = (): string => {
    const end = bytes.indexOf(0x0a, at);
    if (end < 0) fail('a text argument has no end of line: truncated or corrupt');
    const value = new TextDecoder('latin1').decode(bytes.subarray(at, end));
    at = end + 1;
    return value;
  };

  for (;;) {
    opcodeAt = at;
    const op = u8();
    switch (op) {
      case 0x80: { // PROTO
        const protocol = u8();
        if (protocol < 2 || protocol > 5) fail(`pickle protocol ${protocol}; torch.save writes protocols 2 to 5`);
        break;
      }
      case 0x95: u64(); break; // FRAME: a buffering hint, nothing to do
      case 0x2e: { // STOP
        if (stack.length !== 1 || marks.length !== 0) fail(`STOP with ${stack.length} values on the stack`);
        return { value: stack[0], end: at };
      }
      case 0x28: marks.push(stack.length); break; // MARK
      case 0x30: pop(); break; // POP
      case 0x31: popMark(); break; // POP_MARK
      case 0x32: stack.push(top()); break; // DUP
      case 0x4e: stack.push(null); break; // NONE
      case 0x88: stack.push(true); break; // NEWTRUE
      case 0x89: stack.push(false); break; // NEWFALSE
      case 0x4a: need(4, 'BININT'); at += 4; stack.push(view.getInt32(at - 4, true)); break;
      case 0x4b: stack.push(u8()); break; // BININT1
      case 0x4d: stack.push(u16()); break; // BININT2
      case 0x8a: stack.push(long(take(u8(), 'LONG1'))); break;
      case 0x8b: { // LONG4
        const n = u32();
        if (n > MAX_LONG_BYTES) fail(`an integer of ${n} bytes; a torch file holds none over ${MAX_LONG_BYTES}`);
        stack.push(long(take(n, 'LONG4')));
        break;
      }
      case 0x47: need(8, 'BINFLOAT'); at += 8; stack.push(view.getFloat64(at - 8, false)); break;
      case 0x58: stack.push(text(take(u32(), 'BINUNICODE'))); break;
      case 0x8c: stack.push(text(take(u8(), 'SHORT_BINUNICODE'))); break;
      case 0x8d: stack.push(text(take(u64(), 'BINUNICODE8'))); break;
      // Python 2 str (old checkpoints): torch.load decodes them as UTF-8 too.
      case 0x54: stack.push(text(take(u32(), 'BINSTRING'))); break;
      case 0x55: stack.push(text(take(u8(), 'SHORT_BINSTRING'))); break;
      case 0x42: stack.push(take(u32(), 'BINBYTES')); break;
      case 0x43: stack.push(take(u8(), 'SHORT_BINBYTES')); break;
      case 0x8e: stack.push(take(u64(), 'BINBYTES8')); break;
      case 0x96: stack.push(take(u64(), 'BYTEARRAY8')); break;
      case 0x7d: stack.push(new Map()); break; // EMPTY_DICT
      case 0x64: { // DICT
        const dict = new Map();
        setItems(dict, popMark());
        stack.push(dict);
        break;
      }
      case 0x5d: stack.push([]); break; // EMPTY_LIST
      case 0x6c: stack.push(popMark()); break; // LIST
      case 0x29: stack.push(new PyTuple([])); break; // EMPTY_TUPLE
      case 0x74: stack.push(new PyTuple(popMark())); break; // TUPLE
      case 0x85: stack.push(new PyTuple([pop()])); break; // TUPLE1
      case 0x86: { const b = pop(); const a = pop(); stack.push(new PyTuple([a, b])); break; } // TUPLE2
      case 0x87: { const c = pop(); const b = pop(); const a = pop(); stack.push(new PyTuple([a, b, c])); break; } // TUPLE3
      case 0x8f: stack.push(new PySet()); break; // EMPTY_SET
      case 0x90: { const items = popMark(); append(top(), items); break; } // ADDITEMS
      case 0x91: { const set = new PySet(); append(set, popMark()); stack.push(set); break; } // FROZENSET
      case 0x61: { const item = pop(); append(top(), [item]); break; } // APPEND
      case 0x65: { const items = popMark(); append(top(), items); break; } // APPENDS
      case 0x73: { const value = pop(); const key = pop(); setItems(top(), [key, value]); break; } // SETITEM
      case 0x75: { const items = popMark(); setItems(top(), items); break; } // SETITEMS
      case 0x71: memo.set(u8(), top()); break; // BINPUT
      case 0x72: memo.set(u32(), top()); break; // LONG_BINPUT
      case 0x94: memo.set(memo.size, top()); break; // MEMOIZE
      case 0x68: stack.push(memoGet(u8())); break; // BINGET
      case 0x6a: stack.push(memoGet(u32())); break; // LONG_BINGET
      case 0x63: { // GLOBAL: "module\nname\n"
        const module = line();
        const name = line();
        stack.push(hooks.global(module, name));
        break;
      }
      case 0x93: { // STACK_GLOBAL
        const name = pop();
        const module = pop();
        if (typeof module !== 'string' || typeof name !== 'string') fail('STACK_GLOBAL of values that are not strings');
        stack.push(hooks.global(module as string, name as string));
        break;
      }
      case 0x52: { // REDUCE
        const args = tupleOf(pop(), 'REDUCE');
        stack.push(hooks.call(pop(), args));
        break;
      }
      case 0x81: { // NEWOBJ
        const args = tupleOf(pop(), 'NEWOBJ');
        stack.push(hooks.call(pop(), args));
        break;
      }
      case 0x92: { // NEWOBJ_EX
        const kwargs = pop();
        const args = tupleOf(pop(), 'NEWOBJ_EX');
        if (!(kwargs instanceof Map) || kwargs.size > 0) fail('NEWOBJ_EX with keyword arguments');
        stack.push(hooks.call(pop(), args));
        break;
      }
      case 0x62: { const state = pop(); hooks.build(top(), state); break; } // BUILD
      case 0x51: stack.push(hooks.persistentLoad(pop())); break; // BINPERSID
      default:
        fail(`opcode 0x${op.toString(16).padStart(2, '0')} is not one torch.save writes (or the pickle is corrupt)`);
    }
  }
}
