// Loads the public test vectors kept next to the tests (copied from their sources; see vectors/README.md).
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const dir = join(dirname(fileURLToPath(import.meta.url)), 'vectors');

export function loadJson<T = any>(name: string): T {
  return JSON.parse(readFileSync(join(dir, name), 'utf8')) as T;
}

export function loadText(name: string): string {
  return readFileSync(join(dir, name), 'utf8');
}

export const hex = (s: string): Buffer => Buffer.from(s, 'hex');
