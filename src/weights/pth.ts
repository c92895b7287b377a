import type { TensorMap } from '../clip';
import { DTYPE_SIZES } from './dtype';
import { WeightsFile } from './file';
import { unpickle } from './pickle';
import { PickleError } from './pickle-values';
import { materialize, stateDictTensors, StorageTable, torchGlobals, type StorageRef } from './torch-pickle';
import { ZipArchive } from './zip';

// torch/serialization.py: the legacy format opens with this number and protocol version.
const LEGACY_MAGIC_NUMBER = 0x1950a86a20f9469cfc6cn;
const LEGACY_PROTOCOL_VERSION = 1001;
// Pickles of state dicts are a few hundred bytes per tensor; larger ones are not weights files.
const MAX_PICKLE_BYTES = 64 << 20;
const FIRST_PREFIX_BYTES = 64 << 10;

export function isZipSignature(head: Uint8Array): boolean {
  // A local file header, or the end record of an empty archive.
  return head.length >= 4 && head[0] === 0x50 && head[1] === 0x4b &&
    ((head[2] === 3 && head[3] === 4) || (head[2] === 5 && head[3] === 6));
}

export function isPickleSignature(head: Uint8Array): boolean {
  // PROTO 2..5 opcode.
  return head.length >= 2 && head[0] === 0x80 && head[1] >= 2 && head[1] <= 5;
}

/**
 * Reads the tensors of a state dict saved by torch.save, in the zip format (PyTorch 1.6 and
 * later) or the legacy format (torchvision's published .pth files). Every tensor comes back as
 * a contiguous float32 array of its own, in the dict's order. Storage locations (cpu, cuda:0)
 * do not matter: only the bytes are read.
 */
export async function readTorchFile(path: string): Promise<TensorMap> {
  return WeightsFile.use(path, (file) => readTorch(file));
}

export async function readTorch(file: WeightsFile): Promise<TensorMap> {
  const head = await file.read(0, Math.min(file.size, 4), 'the file signature');
  if (isZipSignature(head)) return readZipFormat(file);
  if (isPickleSignature(head)) return readLegacyFormat(file);
  throw file.error('is not a PyTorch file (neither a zip archive nor a pickle)');
}

async function readZipFormat(file: WeightsFile): Promise<TensorMap> {
  const archive = await ZipArchive.open(file);
  // The archive's single top folder is named after the file by older torch, "archive" by newer.
  const pickles = [...archive.entries.keys()].filter((name) => /^[^/]+\/data\.pkl$/.test(name));
  if (pickles.length !== 1) throw file.error(`is a zip archive with ${pickles.length} data.pkl records, not a torch.save file`);
  const folder = pickles[0].slice(0, -'data.pkl'.length);
  const pickleEntry = archive.entries.get(pickles[0])!;
  if (pickleEntry.size > MAX_PICKLE_BYTES) throw file.error(`has a ${pickleEntry.size}-byte data.pkl`);

  let littleEndian = true;
  const byteOrder = archive.entries.get(`${folder}byteorder`);
  if (byteOrder) {
    const text = byteOrder.size <= 16 ? new TextDecoder().decode(await archive.read(byteOrder)) : '';
    if (text !== 'little' && text !== 'big') throw file.error(`has an unknown byte order "${text.slice(0, 16)}"`);
    littleEndian = text === 'little';
  }

  const bytes = await archive.read(pickleEntry);
  const storages = new StorageTable(file, 5);
  const { value, end } = unpickle(bytes, 0, {
    source: `${file.path} (${pickleEntry.name})`,
    globals: torchGlobals(file),
    persistentLoad: (id) => storages.load(id),
  });
  if (end !== bytes.length) throw file.error(`has ${bytes.length - end} bytes after the pickle in ${pickleEntry.name}`);

  const load = async (storage: StorageRef): Promise<Uint8Array> => {
    const entry = archive.entries.get(`${folder}data/${storage.key}`);
    if (!entry) throw file.error(`has no record for storage ${storage.key}`);
    const expected = storage.numel * DTYPE_SIZES[storage.dtype];
    if (entry.size !== expected) {
      throw file.error(`storage ${storage.key} holds ${entry.size} bytes, but ${storage.numel} ${storage.dtype} elements need ${expected}`);
    }
    return archive.read(entry, new Uint8Array(expected));
  };
  return materialize(file, stateDictTensors(file, value), load, littleEndian);
}

interface LegacyPickles {
  value: unknown;
  storages: StorageTable;
  keys: string[];
  end: number;
}

/**
 * The legacy layout (torch/serialization.py, _legacy_save): five pickles in a row (magic number,
 * protocol version, system info, the object, the list of storage keys), then every storage in
 * key order as a u64 element count followed by its raw bytes. torch's C++ storage writer
 * (torch/csrc/serialization.cpp) stores both little-endian whatever the machine, so the system
 * info's byte order is not needed.
 */
function parseLegacyPickles(file: WeightsFile, bytes: Uint8Array): LegacyPickles {
  const source = `${file.path} (legacy header)`;
  const noGlobals = new Map();
  const magic = unpickle(bytes, 0, { source, globals: noGlobals });
  if (magic.value !== LEGACY_MAGIC_NUMBER) throw file.error('is a pickle but not a torch.save file (no magic number)');
  const protocol = unpickle(bytes, magic.end, { source, globals: noGlobals });
  if (protocol.value !== LEGACY_PROTOCOL_VERSION) throw file.error(`has torch protocol version ${String(protocol.value)}, not 1001`);
  const systemInfo = unpickle(bytes, protocol.end, { source, globals: noGlobals });
  if (!(systemInfo.value instanceof Map)) throw file.error('has no system info after its protocol version');
  const storages = new StorageTable(file, 6);
  const object = unpickle(bytes, systemInfo.end, {
    source: `${file.path} (legacy object)`,
    globals: torchGlobals(file),
    persistentLoad: (id) => storages.load(id),
  });
  const keyList = unpickle(bytes, object.end, { source, globals: noGlobals });
  const keys = keyList.value;
  if (!Array.isArray(keys) || !keys.every((key) => typeof key === 'string')) throw file.error('storage key list is not a list of strings');
  return { value: object.value, storages, keys: keys as string[], end: keyList.end };
}

async function readLegacyFormat(file: WeightsFile): Promise<TensorMap> {
  const limit = Math.min(file.size, MAX_PICKLE_BYTES);
  let prefix = await file.read(0, Math.min(limit, FIRST_PREFIX_BYTES), 'the legacy header');
  let pickles: LegacyPickles;
  // The pickles' total length is only known once parsed: grow the prefix until they fit.
  for (;;) {
    try {
      pickles = parseLegacyPickles(file, prefix);
      break;
    } catch (error) {
      if (!(error instanceof PickleError && error.endOfData)) throw error;
      if (prefix.length >= limit) {
        if (limit < file.size) throw file.error(`its pickles exceed ${MAX_PICKLE_BYTES} bytes`);
        throw file.error(`is truncated (${error.message})`);
      }
      const grown = new Uint8Array(Math.min(limit, prefix.length * 2));
      grown.set(prefix);
      await file.read(prefix.length, grown.length - prefix.length, 'the legacy header', grown.subarray(prefix.length));
      prefix = grown;
    }
  }

  const { storages, keys } = pickles;
  const offsets = new Map<string, number>();
  let position = pickles.end;
  for (const key of keys) {
    const storage = storages.byKey.get(key);
    if (!storage) throw file.error(`lists storage ${key}, which no tensor uses`);
    if (offsets.has(key)) throw file.error(`lists storage ${key} twice`);
    const header = await file.read(position, 8, `the size of storage ${key}`);
    const count = new DataView(header.buffer, header.byteOffset, 8).getBigUint64(0, true);
    if (count !== BigInt(storage.numel)) {
      throw file.error(`storage ${key} holds ${count} elements but the pickle says ${storage.numel}`);
    }
    position += 8;
    const bytes = storage.numel * DTYPE_SIZES[storage.dtype];
    file.checkRange(position, bytes, `storage ${key}`);
    offsets.set(key, position);
    position += bytes;
  }
  for (const key of storages.byKey.keys()) {
    if (!offsets.has(key)) throw file.error(`uses storage ${key}, which the file does not hold`);
  }

  const load = async (storage: StorageRef): Promise<Uint8Array> => {
    const length = storage.numel * DTYPE_SIZES[storage.dtype];
    return file.read(offsets.get(storage.key)!, length, `storage ${storage.key}`, new Uint8Array(length));
  };
  return materialize(file, stateDictTensors(file, pickles.value), load, true);
}
