import {
  DEFAULT_PICKLE_LIMITS, PickleError, PickleGlobal, describePickleValue, isTuple, type PickleLimits, type UnpickleOptions,
} from './pickle-values';

/**
 * A restricted unpickler: it understands the binary opcodes of pickle protocols 2 to 5 that
 * torch.save emits, builds plain values, and never calls anything but the handlers its caller
 * allow-lists. Opcode semantics follow CPython's Lib/pickle.py and pickletools.py.
 *
 * Values: None -> null, bool, int -> number (bigint beyond 2^53), float -> number, str -> string,
 * bytes -> Uint8Array, tuple -> frozen array, list -> array, dict -> Map, set -> Set,
 * global -> PickleGlobal.
 */

const utf8 = new TextDecoder('utf-8', { fatal: true });
const MAX_GLOBAL_NAME = 256;
const MAX_LONG_BYTES = 1024;

class Unpickler {
  private position: number;
  private readonly stack: unknown[] = [];
  private readonly marks: number[] = [];
  private readonly memo = new Map<number, unknown>();
  private pushed = 0;
  private readonly limits: PickleLimits;

  constructor(private readonly bytes: Uint8Array, start: number, private readonly options: UnpickleOptions) {
    this.position = start;
    this.limits = { ...DEFAULT_PICKLE_LIMITS, ...options.limits };
  }

  private fail(message: string, endOfData = false): PickleError {
    return new PickleError(`${this.options.source}: pickle byte ${this.position}: ${message}`, endOfData);
  }

  private take(length: number): Uint8Array {
    this.need(length);
    const slice = this.bytes.subarray(this.position, this.position + length);
    this.position += length;
    return slice;
  }

  private need(length: number): void {
    if (length > this.bytes.length - this.position) {
      throw this.fail(`needs ${length} bytes, ${this.bytes.length - this.position} left`, true);
    }
  }

  private unsigned(length: 1 | 2 | 4 | 8): number {
    this.need(length);
    let value = 0;
    for (let index = this.position + length - 1; index >= this.position; index--) value = value * 256 + this.bytes[index];
    this.position += length;
    if (!Number.isSafeInteger(value)) throw this.fail(`declared length ${value} is absurd`);
    return value;
  }

  private signed32(): number {
    this.need(4);
    const bytes = this.bytes;
    const at = this.position;
    this.position += 4;
    return bytes[at] | (bytes[at + 1] << 8) | (bytes[at + 2] << 16) | (bytes[at + 3] << 24);
  }

  private text(length: number): string {
    try {
      return utf8.decode(this.take(length));
    } catch (error) {
      if (error instanceof PickleError) throw error;
      throw this.fail('string is not valid UTF-8');
    }
  }

  private line(): string {
    const window = this.bytes.subarray(this.position, this.position + MAX_GLOBAL_NAME + 1);
    const length = window.indexOf(0x0a);
    if (length < 0) {
      if (this.position + window.length >= this.bytes.length) throw this.fail('unterminated name', true);
      throw this.fail('name too long');
    }
    const value = this.text(length);
    this.position += 1;
    return value;
  }

  private long(length: number): number | bigint {
    if (length > MAX_LONG_BYTES) throw this.fail(`integer of ${length} bytes is too large`);
    const raw = this.take(length);
    if (length === 0) return 0;
    let hex = '';
    for (let index = length - 1; index >= 0; index--) hex += raw[index].toString(16).padStart(2, '0');
    let value = BigInt(`0x${hex}`);
    // Two's complement, little-endian.
    if (raw[length - 1] & 0x80) value -= 1n << BigInt(8 * length);
    return value >= BigInt(Number.MIN_SAFE_INTEGER) && value <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(value) : value;
  }

  private push(value: unknown): void {
    if (++this.pushed > this.limits.maxValues) throw this.fail(`more than ${this.limits.maxValues} values`);
    this.stack.push(value);
  }

  private base(): number {
    return this.marks.length === 0 ? 0 : this.marks[this.marks.length - 1];
  }

  private pop(): unknown {
    if (this.stack.length <= this.base()) throw this.fail('stack underflow');
    return this.stack.pop();
  }

  private top(): unknown {
    if (this.stack.length <= this.base()) throw this.fail('stack underflow');
    return this.stack[this.stack.length - 1];
  }

  private popMark(): unknown[] {
    if (this.marks.length === 0) throw this.fail('no MARK to pop to');
    const base = this.marks.pop() as number;
    return this.stack.splice(base);
  }

  private pushGlobal(module: unknown, name: unknown): void {
    if (typeof module !== 'string' || typeof name !== 'string' || module.length > MAX_GLOBAL_NAME ||
        name.length > MAX_GLOBAL_NAME) {
      throw this.fail('global name is not a pair of short strings');
    }
    const qualifiedName = `${module}.${name}`;
    const handler = this.options.globals.get(qualifiedName);
    if (!handler) {
      throw this.fail(`refers to ${qualifiedName}, which is not on the allow-list (nothing was executed; ` +
        'only state dicts of tensors can be read)');
    }
    this.push(new PickleGlobal(module, name, handler));
  }

  private call(callable: unknown, args: unknown): unknown {
    if (!(callable instanceof PickleGlobal) || !callable.handler.call) {
      throw this.fail(`cannot call ${describePickleValue(callable)}`);
    }
    if (!isTuple(args)) throw this.fail(`arguments of ${callable.qualifiedName} are ${describePickleValue(args)}, not a tuple`);
    return callable.handler.call(args);
  }

  private memoize(index: number): void {
    if (!this.memo.has(index) && this.memo.size >= this.limits.maxMemo) {
      throw this.fail(`more than ${this.limits.maxMemo} memo entries`);
    }
    this.memo.set(index, this.top());
  }

  private recall(index: number): void {
    if (!this.memo.has(index)) throw this.fail(`memo entry ${index} was never stored`);
    this.push(this.memo.get(index));
  }

  private list(): unknown[] {
    const target = this.top();
    if (!Array.isArray(target) || isTuple(target)) throw this.fail(`cannot append to ${describePickleValue(target)}`);
    return target;
  }

  private dict(): Map<unknown, unknown> {
    const target = this.top();
    if (!(target instanceof Map)) throw this.fail(`cannot set items of ${describePickleValue(target)}`);
    return target;
  }

  private setItems(target: Map<unknown, unknown>, items: unknown[]): void {
    if (items.length % 2 !== 0) throw this.fail('odd number of items for a dict');
    for (let index = 0; index < items.length; index += 2) target.set(items[index], items[index + 1]);
  }

  run(): { value: unknown; end: number } {
    for (;;) {
      this.need(1);
      const opcode = this.bytes[this.position++];
      switch (opcode) {
        case 0x80: { // PROTO
          const protocol = this.unsigned(1);
          if (protocol > 5) throw this.fail(`unknown pickle protocol ${protocol}`);
          break;
        }
        case 0x95: // FRAME: a length hint only
          if (this.unsigned(8) > this.bytes.length - this.position) throw this.fail('frame extends past the end', true);
          break;
        case 0x2e: { // STOP
          if (this.marks.length !== 0 || this.stack.length !== 1) throw this.fail('stack is not a single value at STOP');
          return { value: this.stack[0], end: this.position };
        }
        case 0x28: // MARK
          if (this.marks.length >= this.limits.maxMarkDepth) throw this.fail(`nesting deeper than ${this.limits.maxMarkDepth}`);
          this.marks.push(this.stack.length);
          break;
        case 0x30: // POP
          if (this.stack.length > this.base()) this.stack.pop();
          else this.popMark();
          break;
        case 0x31: this.popMark(); break; // POP_MARK
        case 0x32: this.push(this.top()); break; // DUP
        case 0x4e: this.push(null); break; // NONE
        case 0x88: this.push(true); break; // NEWTRUE
        case 0x89: this.push(false); break; // NEWFALSE
        case 0x4b: this.push(this.unsigned(1)); break; // BININT1
        case 0x4d: this.push(this.unsigned(2)); break; // BININT2
        case 0x4a: this.push(this.signed32()); break; // BININT
        case 0x8a: this.push(this.long(this.unsigned(1))); break; // LONG1
        case 0x8b: { // LONG4
          const length = this.signed32();
          if (length < 0) throw this.fail('negative length');
          this.push(this.long(length));
          break;
        }
        case 0x47: { // BINFLOAT, big-endian
          const raw = this.take(8);
          this.push(new DataView(raw.buffer, raw.byteOffset, 8).getFloat64(0, false));
          break;
        }
        case 0x58: this.push(this.text(this.unsigned(4))); break; // BINUNICODE
        case 0x8c: this.push(this.text(this.unsigned(1))); break; // SHORT_BINUNICODE
        case 0x8d: this.push(this.text(this.unsigned(8))); break; // BINUNICODE8
        case 0x55: this.push(this.text(this.unsigned(1))); break; // SHORT_BINSTRING (torch.load decodes as UTF-8)
        case 0x54: { // BINSTRING
          const length = this.signed32();
          if (length < 0) throw this.fail('negative length');
          this.push(this.text(length));
          break;
        }
        case 0x43: this.push(this.take(this.unsigned(1)).slice()); break; // SHORT_BINBYTES
        case 0x42: this.push(this.take(this.unsigned(4)).slice()); break; // BINBYTES
        case 0x8e: // BINBYTES8
        case 0x96: this.push(this.take(this.unsigned(8)).slice()); break; // BYTEARRAY8
        case 0x29: this.push(Object.freeze([])); break; // EMPTY_TUPLE
        case 0x74: this.push(Object.freeze(this.popMark())); break; // TUPLE
        case 0x85: this.push(Object.freeze([this.pop()])); break; // TUPLE1
        case 0x86: { // TUPLE2
          const second = this.pop();
          this.push(Object.freeze([this.pop(), second]));
          break;
        }
        case 0x87: { // TUPLE3
          const third = this.pop();
          const second = this.pop();
          this.push(Object.freeze([this.pop(), second, third]));
          break;
        }
        case 0x5d: this.push([]); break; // EMPTY_LIST
        case 0x6c: this.push(this.popMark()); break; // LIST
        case 0x61: { // APPEND
          const value = this.pop();
          this.list().push(value);
          break;
        }
        case 0x65: { // APPENDS
          const items = this.popMark();
          const target = this.list();
          for (const item of items) target.push(item);
          break;
        }
        case 0x7d: this.push(new Map()); break; // EMPTY_DICT
        case 0x64: { // DICT
          const target = new Map<unknown, unknown>();
          this.setItems(target, this.popMark());
          this.push(target);
          break;
        }
        case 0x73: { // SETITEM
          const value = this.pop();
          const key = this.pop();
          this.dict().set(key, value);
          break;
        }
        case 0x75: { // SETITEMS
          const items = this.popMark();
          this.setItems(this.dict(), items);
          break;
        }
        case 0x8f: this.push(new Set()); break; // EMPTY_SET
        case 0x90: { // ADDITEMS
          const items = this.popMark();
          const target = this.top();
          if (!(target instanceof Set)) throw this.fail(`cannot add items to ${describePickleValue(target)}`);
          for (const item of items) target.add(item);
          break;
        }
        case 0x91: this.push(new Set(this.popMark())); break; // FROZENSET
        case 0x63: { // GLOBAL
          const module = this.line();
          this.pushGlobal(module, this.line());
          break;
        }
        case 0x93: { // STACK_GLOBAL
          const name = this.pop();
          this.pushGlobal(this.pop(), name);
          break;
        }
        case 0x52: // REDUCE
        case 0x81: { // NEWOBJ: cls.__new__(cls, *args); the handlers build the same value either way
          const args = this.pop();
          this.push(this.call(this.pop(), args));
          break;
        }
        case 0x92: { // NEWOBJ_EX
          const keywords = this.pop();
          const args = this.pop();
          if (!(keywords instanceof Map) || keywords.size !== 0) throw this.fail('keyword arguments are not supported');
          this.push(this.call(this.pop(), args));
          break;
        }
        case 0x62: { // BUILD
          const state = this.pop();
          const target = this.top();
          // A dict subclass's attributes (OrderedDict._metadata of a state_dict) are not needed.
          if (!(target instanceof Map)) {
            throw this.fail(`cannot set the state of ${describePickleValue(target)} to ${describePickleValue(state)}`);
          }
          break;
        }
        case 0x71: this.memoize(this.unsigned(1)); break; // BINPUT
        case 0x72: this.memoize(this.unsigned(4)); break; // LONG_BINPUT
        case 0x94: this.memoize(this.memo.size); break; // MEMOIZE
        case 0x68: this.recall(this.unsigned(1)); break; // BINGET
        case 0x6a: this.recall(this.unsigned(4)); break; // LONG_BINGET
        case 0x51: { // BINPERSID
          const id = this.pop();
          if (!this.options.persistentLoad) throw this.fail('unexpected persistent id');
          this.push(this.options.persistentLoad(id));
          break;
        }
        default:
          this.position--;
          throw this.fail(`unsupported opcode 0x${opcode.toString(16).padStart(2, '0')}`);
      }
    }
  }
}

/** Reads one pickle starting at `start`; returns its value and the offset just past its STOP. */
export function unpickle(bytes: Uint8Array, start: number, options: UnpickleOptions): { value: unknown; end: number } {
  return new Unpickler(bytes, start, options).run();
}
