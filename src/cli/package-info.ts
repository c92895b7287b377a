import fs from 'node:fs';
import path from 'node:path';

// Compiled to dist/cli/, two levels below the package root.
const packageRoot = path.resolve(__dirname, '..', '..');

export function packageVersion(): string {
  const manifest = JSON.parse(fs.readFileSync(path.join(packageRoot, 'package.json'), 'utf8')) as { version: string };
  return manifest.version;
}
