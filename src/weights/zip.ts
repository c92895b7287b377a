import type { WeightsFile } from './file';

/**
 * A reader for the uncompressed zip archives torch.save writes (record layout from PKWARE's
 * APPNOTE.TXT, sections 4.3 and 4.4). Only what the central directory says is trusted, and every
 * offset is checked against the file before it is read. Entries are not CRC-checked: reading
 * 550 MB twice to verify them would double the load time, and the structure checks already
 * catch truncation.
 */

export interface ZipEntry {
  name: string;
  size: number;
  localHeaderOffset: number;
}

const END_OF_CENTRAL_DIRECTORY = 0x06054b50;
const ZIP64_END_OF_CENTRAL_DIRECTORY = 0x06064b50;
const ZIP64_LOCATOR = 0x07064b50;
const CENTRAL_FILE_HEADER = 0x02014b50;
const LOCAL_FILE_HEADER = 0x04034b50;
const ZIP64_EXTRA_FIELD = 0x0001;
const MAX_COMMENT = 0xffff;
const END_RECORD_SIZE = 22;
// torch writes a few records per tensor; this leaves room for state dicts of millions of tensors.
const MAX_CENTRAL_DIRECTORY_BYTES = 256 << 20;

function view(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

function uint64(data: DataView, offset: number): number {
  const value = data.getBigUint64(offset, true);
  return value > BigInt(Number.MAX_SAFE_INTEGER) ? Number.POSITIVE_INFINITY : Number(value);
}

const utf8 = new TextDecoder('utf-8', { fatal: true });
const latin1 = new TextDecoder('latin1');

export class ZipArchive {
  private constructor(private readonly file: WeightsFile, readonly entries: ReadonlyMap<string, ZipEntry>) {}

  static async open(file: WeightsFile): Promise<ZipArchive> {
    const tailLength = Math.min(file.size, END_RECORD_SIZE + MAX_COMMENT);
    if (tailLength < END_RECORD_SIZE) throw file.error('is too short to be a zip archive');
    const tailStart = file.size - tailLength;
    const tail = await file.read(tailStart, tailLength, 'the end of the zip archive');
    const tailView = view(tail);
    let endOffset = -1;
    // The end record is the last signature whose comment length reaches exactly to the end.
    for (let offset = tailLength - END_RECORD_SIZE; offset >= 0; offset--) {
      if (tailView.getUint32(offset, true) === END_OF_CENTRAL_DIRECTORY &&
          offset + END_RECORD_SIZE + tailView.getUint16(offset + 20, true) === tailLength) {
        endOffset = offset;
        break;
      }
    }
    if (endOffset < 0) throw file.error('has no zip end-of-central-directory record (truncated?)');
    let count = tailView.getUint16(endOffset + 10, true);
    let directorySize = tailView.getUint32(endOffset + 12, true);
    let directoryOffset = tailView.getUint32(endOffset + 16, true);
    if (tailView.getUint16(endOffset + 4, true) !== 0 || tailView.getUint16(endOffset + 6, true) !== 0) {
      throw file.error('is a multi-disk zip archive');
    }
    const locatorOffset = tailStart + endOffset - 20;
    if (locatorOffset >= 0) {
      const locator = view(await file.read(locatorOffset, 20, 'the zip64 locator'));
      if (locator.getUint32(0, true) === ZIP64_LOCATOR) {
        const zip64Offset = uint64(locator, 8);
        const record = view(await file.read(zip64Offset, 56, 'the zip64 end-of-central-directory record'));
        if (record.getUint32(0, true) !== ZIP64_END_OF_CENTRAL_DIRECTORY) throw file.error('has a broken zip64 end record');
        count = uint64(record, 32);
        directorySize = uint64(record, 40);
        directoryOffset = uint64(record, 48);
      }
    }
    if (directorySize > MAX_CENTRAL_DIRECTORY_BYTES) throw file.error(`declares a ${directorySize}-byte zip directory`);
    // Each central record is at least 46 bytes; a larger count cannot be true.
    if (count * 46 > directorySize) throw file.error(`declares ${count} zip entries in ${directorySize} bytes`);
    const directory = await file.read(directoryOffset, directorySize, 'the zip central directory');
    return new ZipArchive(file, ZipArchive.parseDirectory(file, directory, count));
  }

  private static parseDirectory(file: WeightsFile, directory: Uint8Array, count: number): Map<string, ZipEntry> {
    const data = view(directory);
    const entries = new Map<string, ZipEntry>();
    let offset = 0;
    for (let index = 0; index < count; index++) {
      if (offset + 46 > directory.length || data.getUint32(offset, true) !== CENTRAL_FILE_HEADER) {
        throw file.error(`zip central directory record ${index} is missing or broken`);
      }
      const flags = data.getUint16(offset + 8, true);
      const method = data.getUint16(offset + 10, true);
      let compressedSize = data.getUint32(offset + 20, true);
      let size = data.getUint32(offset + 24, true);
      const nameLength = data.getUint16(offset + 28, true);
      const extraLength = data.getUint16(offset + 30, true);
      const commentLength = data.getUint16(offset + 32, true);
      let localHeaderOffset = data.getUint32(offset + 42, true);
      const end = offset + 46 + nameLength + extraLength + commentLength;
      if (end > directory.length) throw file.error(`zip central directory record ${index} runs past the directory`);
      const nameBytes = directory.subarray(offset + 46, offset + 46 + nameLength);
      let name: string;
      try {
        // Bit 11: the name is UTF-8; otherwise it is code page 437, of which torch uses only ASCII.
        name = (flags & 0x800) !== 0 ? utf8.decode(nameBytes) : latin1.decode(nameBytes);
      } catch {
        throw file.error(`zip entry ${index} has a name that is not UTF-8`);
      }
      // Zip64: a 0xFFFFFFFF field is replaced by the next 8-byte value of the extra field, in order.
      let extra = offset + 46 + nameLength;
      const extraEnd = extra + extraLength;
      while (extra + 4 <= extraEnd) {
        const id = data.getUint16(extra, true);
        const length = data.getUint16(extra + 2, true);
        if (extra + 4 + length > extraEnd) throw file.error(`zip entry ${name} has a broken extra field`);
        if (id === ZIP64_EXTRA_FIELD) {
          let field = extra + 4;
          const next = (): number => {
            if (field + 8 > extra + 4 + length) throw file.error(`zip entry ${name} has a short zip64 field`);
            const value = uint64(data, field);
            field += 8;
            return value;
          };
          if (size === 0xffffffff) size = next();
          if (compressedSize === 0xffffffff) compressedSize = next();
          if (localHeaderOffset === 0xffffffff) localHeaderOffset = next();
        }
        extra += 4 + length;
      }
      if ((flags & 0x1) !== 0) throw file.error(`zip entry ${name} is encrypted`);
      if (method !== 0 || compressedSize !== size) {
        throw file.error(`zip entry ${name} is compressed (method ${method}); torch.save stores entries uncompressed`);
      }
      if (entries.has(name)) throw file.error(`zip entry ${name} appears twice`);
      file.checkRange(localHeaderOffset, size, `zip entry ${name}`);
      entries.set(name, { name, size, localHeaderOffset });
      offset = end;
    }
    return entries;
  }

  /** The file offset where an entry's bytes begin, from its local header. */
  async dataOffset(entry: ZipEntry): Promise<number> {
    const header = await this.file.read(entry.localHeaderOffset, 30, `the local header of zip entry ${entry.name}`);
    const data = view(header);
    if (data.getUint32(0, true) !== LOCAL_FILE_HEADER) throw this.file.error(`zip entry ${entry.name} has no local header`);
    const start = entry.localHeaderOffset + 30 + data.getUint16(26, true) + data.getUint16(28, true);
    this.file.checkRange(start, entry.size, `zip entry ${entry.name}`);
    return start;
  }

  /** Reads a whole entry, into `target` when given. */
  async read(entry: ZipEntry, target?: Uint8Array): Promise<Uint8Array> {
    return this.file.read(await this.dataOffset(entry), entry.size, `zip entry ${entry.name}`, target);
  }
}
