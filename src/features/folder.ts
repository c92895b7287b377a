// Making and recognising a store folder: DIR/store.json names the format, its version and the dtype
// of the entries, fixed when the store is made.
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { VideoRNNError } from '../errors';
import { STORE_FORMAT, STORE_VERSION } from './layout';
import type { FeatureDtype } from './types';

interface StoreDescription { format: string; version: number; dtype: FeatureDtype }

function notAStore(root: string, why: string): VideoRNNError {
  return new VideoRNNError('E_FEATURE_STORE', `${root} is not a usable feature store: ${why}`);
}

async function readDescription(root: string): Promise<StoreDescription | undefined> {
  const file = path.join(root, 'store.json');
  let text: string;
  try {
    text = await fs.promises.readFile(file, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return undefined;
    if (code === 'EISDIR') throw notAStore(root, 'store.json is a folder');
    throw new VideoRNNError('E_IO', `Cannot read ${file} (${code ?? 'error'})`, { cause: error });
  }
  try {
    return JSON.parse(text) as StoreDescription;
  } catch {
    throw notAStore(root, 'store.json is not JSON');
  }
}

function check(root: string, description: StoreDescription, dtype: FeatureDtype | undefined): FeatureDtype {
  if (description === null || typeof description !== 'object' || description.format !== STORE_FORMAT) {
    throw notAStore(root, `store.json does not describe a ${STORE_FORMAT} store`);
  }
  if (description.version !== STORE_VERSION) {
    throw notAStore(root, `format version ${String(description.version)}, this version of video-rnn reads ${STORE_VERSION}`);
  }
  const held = description.dtype;
  if (held !== 'float32' && held !== 'bf16' && held !== 'fp16') throw notAStore(root, `unknown dtype ${String(held)}`);
  if (dtype !== undefined && dtype !== held) {
    throw new VideoRNNError('E_FEATURE_STORE', `The feature store ${root} holds ${held} entries, not ${dtype}; use another folder for ${dtype}`);
  }
  return held;
}

/** Opens the folder as a store, making it (and store.json) when it is new or empty; returns the store's dtype. */
export async function openStoreFolder(root: string, dtype: FeatureDtype | undefined): Promise<FeatureDtype> {
  try {
    await fs.promises.mkdir(root, { recursive: true });
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'EEXIST' || code === 'ENOTDIR') throw notAStore(root, 'it is a file');
    throw new VideoRNNError('E_IO', `Cannot make the feature store folder ${root} (${code ?? 'error'})`, { cause: error });
  }
  const existing = await readDescription(root);
  if (existing !== undefined) return check(root, existing, dtype);
  // Only what a store being made by another process at this moment holds may be there already,
  // store.json included: another process may have linked it since it was looked for (the link below
  // then fails with EEXIST, and its description is read).
  const names = await fs.promises.readdir(root);
  const foreign = names.filter((name) => !['entries', 'claims', 'store.json'].includes(name) && !/^\.store\.json\..*\.tmp$/.test(name));
  if (foreign.length > 0) throw notAStore(root, `the folder is not empty and has no store.json (it holds ${foreign.slice(0, 3).join(', ')})`);
  const description: StoreDescription = { format: STORE_FORMAT, version: STORE_VERSION, dtype: dtype ?? 'float32' };
  const temporary = path.join(root, `.store.json.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
  const file = path.join(root, 'store.json');
  try {
    await fs.promises.writeFile(temporary, `${JSON.stringify(description, null, 2)}\n`, { flag: 'wx' });
    // link, unlike rename, never replaces: of several processes making the store at once, the first wins.
    await fs.promises.link(temporary, file).catch(async (error: NodeJS.ErrnoException) => {
      if (error.code === 'EEXIST') return;
      if (error.code === 'EPERM' || error.code === 'ENOTSUP' || error.code === 'EOPNOTSUPP') {
        if ((await readDescription(root)) === undefined) await fs.promises.rename(temporary, file);
        return;
      }
      throw error;
    });
  } catch (error) {
    throw new VideoRNNError('E_IO', `Cannot make the feature store ${root} (${(error as NodeJS.ErrnoException).code ?? 'error'})`, { cause: error });
  } finally {
    await fs.promises.unlink(temporary).catch(() => undefined);
  }
  await fs.promises.mkdir(path.join(root, 'entries'), { recursive: true });
  const made = await readDescription(root);
  if (made === undefined) throw notAStore(root, 'store.json vanished while it was made');
  return check(root, made, dtype);
}
