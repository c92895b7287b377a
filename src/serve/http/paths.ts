// Paths named in a request body are read only inside the folder given to --allow-paths, judged
// after every symlink is followed, so neither "../" nor a link out of the folder escapes it.
import fs from 'node:fs';
import path from 'node:path';
import { VideoRNNError, invalidArgument } from '../../errors';
import { HttpError } from './errors';

function inside(root: string, candidate: string): boolean {
  return candidate.startsWith(root.endsWith(path.sep) ? root : root + path.sep);
}

export class AllowedPaths {
  private constructor(readonly root: string) {}

  /** The folder is resolved once, at start-up; it must exist. */
  static async open(folder: string): Promise<AllowedPaths> {
    try {
      const root = await fs.promises.realpath(folder);
      if (!(await fs.promises.stat(root)).isDirectory()) throw new Error('not a folder');
      return new AllowedPaths(root);
    } catch (error) {
      throw new VideoRNNError('E_INVALID_ARGUMENT', `allowPaths: "${folder}" is not a folder that exists`, { cause: error });
    }
  }

  /** The real path of `requested` (relative paths start at the folder), or an error that says why not. */
  async resolve(requested: unknown, name: string): Promise<string> {
    if (typeof requested !== 'string' || requested.length === 0 || requested.includes('\0')) {
      throw invalidArgument(name, 'a non-empty path', requested);
    }
    const forbidden = new HttpError('E_FORBIDDEN_PATH', `${name} is outside the folder this server may read (--allow-paths)`);
    // Refused before touching the file system, so nothing outside the folder is even looked up.
    if (!inside(this.root, path.resolve(this.root, requested))) throw forbidden;
    let real: string;
    try {
      real = await fs.promises.realpath(path.resolve(this.root, requested));
    } catch (error) {
      throw new VideoRNNError('E_VIDEO_NOT_FOUND', `${name} does not exist`, { cause: error });
    }
    if (!inside(this.root, real)) throw forbidden;
    return real;
  }
}
